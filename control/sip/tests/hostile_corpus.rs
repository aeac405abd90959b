//! The hostile corpus in `tests/hostile/` (also replayed end to end against relay-control
//! by `dataplane/tests/sbc_hostile_sip.rs`): what the parser makes of each file, as
//! `tests/hostile/MANIFEST` says, and that every answer it allows is built from safe text.
//!
//! 420 and 488 are the B2BUA's answers (an unknown Require tag, an SDP it cannot accept):
//! for the parser those messages are valid.

use std::path::Path;

use relay_sip::{parse_datagram, Datagram, Frame, Limits, ParseError, Refused, StreamDecoder};

struct Case {
    file: String,
    datagram: String,
    stream: String,
}

fn manifest() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let text = std::fs::read_to_string(dir.join("MANIFEST")).unwrap();
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{l}");
            Case {
                file: f[0].into(),
                datagram: f[1].into(),
                stream: f[2].into(),
            }
        })
        .collect();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "MANIFEST")
        .collect();
    files.sort();
    let mut listed: Vec<String> = cases.iter().map(|c| c.file.clone()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "every corpus file is in MANIFEST, and only those"
    );
    cases
}

fn load(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(file);
    let data = std::fs::read(path).unwrap();
    // "@ID@" and "idx1" have the same length: Content-Length stays right.
    replace(&data, b"@ID@", b"idx1")
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// Checks an answer the parser allows: the status wanted, the request's Call-ID, and
/// nothing in it but printable text and CRLFs.
fn check_answer(refused: &Refused, e: ParseError, want: u16, file: &str) {
    let answer = refused
        .error_response(e, "sbc.test", "t")
        .unwrap_or_else(|b| panic!("{file}: no answer ({b})"));
    assert_eq!(answer.status(), Some(want), "{file}: {e:?}");
    assert_eq!(
        answer.headers.get(relay_sip::StdHeader::CallId),
        Some("idx1"),
        "{file}"
    );
    let bytes = answer.to_bytes();
    let text = String::from_utf8(bytes).expect("UTF-8");
    assert!(
        text.chars()
            .all(|c| !c.is_control() || c == '\r' || c == '\n'),
        "{file}: {text:?}"
    );
    assert!(!text.contains("z9hG4bKevil"), "{file}: injected Via echoed");
}

#[test]
fn the_parser_treats_each_file_as_the_manifest_says() {
    let limits = Limits::default();
    for c in manifest() {
        let data = load(&c.file);
        // As a datagram.
        let parsed = parse_datagram(&data, &limits);
        match (c.datagram.as_str(), &parsed) {
            ("skip", _) => assert!(data.len() > 65_507, "{}: fits a datagram", c.file),
            ("420" | "488", Ok(Datagram::Message(m))) => assert!(m.is_request()),
            ("-", Err(_)) => assert!(
                !Refused::salvage(&data, &limits).is_answerable(),
                "{}",
                c.file
            ),
            (status, Err(e)) => {
                let want: u16 = status.parse().unwrap();
                check_answer(&Refused::salvage(&data, &limits), *e, want, &c.file);
            }
            (want, got) => panic!("{}: datagram wants {want}, got {got:?}", c.file),
        }
        // On a stream, in chunks of 1000 bytes.
        let mut d = StreamDecoder::new(limits.clone());
        let mut frames = Vec::new();
        let mut error = None;
        'feed: for chunk in data.chunks(1000) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let n = d.push(rest);
                rest = &rest[n..];
                loop {
                    match d.next_frame() {
                        Ok(Some(f)) => frames.push(f),
                        Ok(None) => break,
                        Err(e) => {
                            error = Some(e);
                            break 'feed;
                        }
                    }
                }
                if n == 0 {
                    break;
                }
            }
        }
        let (status, close) = match c.stream.split_once('+') {
            Some((s, "close")) => (s, true),
            _ if c.stream == "close" => ("-", true),
            _ => (c.stream.as_str(), false),
        };
        if close {
            let e = error.unwrap_or_else(|| panic!("{}: the framing holds", c.file));
            let refused = d.refused().expect("salvaged");
            if status == "-" {
                assert!(!refused.is_answerable(), "{}", c.file);
            } else {
                check_answer(refused, e, status.parse().unwrap(), &c.file);
            }
            continue;
        }
        assert_eq!(error, None, "{}", c.file);
        assert_eq!(frames.len(), 1, "{}: {frames:?}", c.file);
        match (status, &frames[0]) {
            ("420" | "488", Frame::Message(m)) => assert!(m.is_request()),
            ("-", Frame::Invalid(_, r)) => assert!(!r.is_answerable(), "{}", c.file),
            (s, Frame::Invalid(e, r)) => check_answer(r, *e, s.parse().unwrap(), &c.file),
            (want, got) => panic!("{}: stream wants {want}, got {got:?}", c.file),
        }
    }
}
