//! One call through the B2BUA: its two dialogs (leg a, where the call came from; leg b, where
//! it goes), its media, and the requests each leg's dialog sends.

use relay_sip::sdp::SessionDescription;
use relay_sip::{Header, HeaderName, Message, Method, StdHeader, Transport, Uri};

use crate::media::OfferedMedia;

/// A call's key inside the B2BUA.
pub type CallKey = u64;

/// An identifier of a transport flow the shell keeps: a TCP or TLS connection, or a UDP
/// socket and remote address.
pub type FlowId = u64;

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Destination {
    /// Back on a flow a message arrived on (the connection is reused in both directions).
    Flow(FlowId),
    /// A trunk's peer: the shell reuses its connection to the peer or opens one.
    Peer {
        /// The trunk.
        trunk: usize,
        /// The peer, in the trunk's priority order.
        peer: usize,
    },
    /// The host and port of the request's own Request-URI (a dialog's remote target),
    /// with the trunk's transport and TLS settings: for a leg whose connection is gone.
    Target {
        /// The trunk.
        trunk: usize,
    },
}

/// Which leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Leg {
    /// Where the call came from (the caller).
    A,
    /// Where the call goes (the callee).
    B,
}

impl Leg {
    /// The other leg.
    pub fn other(self) -> Leg {
        match self {
            Leg::A => Leg::B,
            Leg::B => Leg::A,
        }
    }
}

/// Where a call is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The INVITE went to b; no final response yet.
    Calling,
    /// b answered; the 200 went to a, whose ACK is awaited.
    Answered,
    /// Both dialogs confirmed.
    Confirmed,
    /// Ended towards a; b's side is being cleaned up (a CANCEL or BYE outstanding).
    Ending,
}

/// One leg's dialog, from our side.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// The trunk of the leg.
    pub trunk: usize,
    /// Where requests to the leg go.
    pub to: Destination,
    /// The transport towards the leg.
    pub transport: Transport,
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Our From value in requests we send, with our tag.
    pub local: String,
    /// The peer's address value (To in requests we send), with its tag once known.
    pub remote: String,
    /// The peer's target (its Contact), where in-dialog requests are addressed.
    pub remote_target: Option<Uri>,
    /// The CSeq of our last request.
    pub cseq: u32,
}

impl Dialog {
    /// Sets the peer's tag on the remote value (from its first response).
    pub fn set_remote_tag(&mut self, tag: &str) {
        if !self.remote.contains(";tag=") {
            self.remote = format!("{};tag={tag}", self.remote);
        }
    }
}

/// A call and everything the B2BUA keeps of it.
#[derive(Debug)]
pub struct Call {
    /// Its key.
    pub key: CallKey,
    /// Its id in the data plane (never a SIP identifier: those are personal data).
    pub dataplane_id: String,
    /// Where it is.
    pub phase: Phase,
    /// Leg a's dialog (we are its UAS).
    pub a: Dialog,
    /// Leg b's dialog (we are its UAC).
    pub b: Dialog,
    /// a's INVITE, for the responses to it.
    pub a_invite: Message,
    /// The flow a's INVITE came on.
    pub a_flow: FlowId,
    /// The last response sent to a's INVITE (resent when a retransmits over UDP).
    pub a_last_response: Option<Message>,
    /// Our INVITE to b (for CANCEL and the ACK of a failure).
    pub b_invite: Message,
    /// Which peer of b's trunk it went to.
    pub b_peer: usize,
    /// How many INVITEs this call sent to b (one per peer tried).
    pub b_attempt: u32,
    /// The offer sent to b, for the next peer.
    pub b_offer: SessionDescription,
    /// The media of that offer.
    pub offered: OfferedMedia,
    /// The answer sent to a, once b answered (the same in 18x and 200).
    pub a_answer: Option<SessionDescription>,
    /// The suites towards b per anchored stream, once b answered (`None`: plain RTP).
    pub b_suites: Vec<Option<String>>,
    /// The data plane's packet count of the call when it last changed, and when that was.
    pub media_seen: (u64, u64),
    /// The data plane's last counters of the call (stream positions for a re-install).
    pub last_counters: Option<relay_session::stats::CallCounters>,
    /// A leg put the call on hold (its last offer was sendonly, recvonly or inactive).
    pub held: bool,
    /// The wall-clock setup and answer times (Unix ms) of a call restored after a restart,
    /// which the process's own clock cannot express.
    pub restored_times: Option<(i64, Option<i64>)>,
    /// The suites per stream of a call restored after a restart (its keys are unknown).
    pub restored_suites: Vec<(Option<String>, Option<String>)>,
    /// a's INVITE had no offer: b's 200 makes it, a's ACK answers it (RFC 3264 section 4,
    /// "offer in the 2xx, answer in the ACK").
    pub offerless: bool,
    /// b's offer as relayed to a (oriented offerer = b), until a's ACK answers it.
    pub late_offer: Option<OfferedMedia>,
    /// A re-INVITE or UPDATE being relayed.
    pub(crate) reoffer: Option<crate::core::reinvite::Reoffer>,
    /// The data plane's media pairs installed, if any.
    pub installed: Option<Vec<relay_session::MediaSpec>>,
    /// a cancelled before b's final response.
    pub cancelled: bool,
    /// b sent a provisional response (a CANCEL may go to it).
    pub b_provisional: bool,
    /// b's final response to the INVITE arrived.
    pub b_final: bool,
    /// The caller's number or user.
    pub caller: String,
    /// The called number or user.
    pub callee: String,
    /// When the INVITE arrived.
    pub setup_ns: u64,
    /// When b answered.
    pub answer_ns: Option<u64>,
    /// The version of the SDP we send to a.
    pub sdp_version: u64,
    /// The last SDP each leg (a, b) sent us: the media a transfer re-offers.
    pub sdp_from: [Option<SessionDescription>; 2],
    /// Each leg's session timer (RFC 4028), if it has one.
    pub session_timers: [Option<crate::core::session_timer::SessionTimer>; 2],
    /// A transfer (REFER) in progress.
    pub(crate) transfer: Option<crate::core::refer::Transfer>,
}

/// A header field from values this crate wrote (checked in debug builds).
pub(crate) fn header(name: impl Into<HeaderName>, value: impl Into<String>) -> Header {
    Header::new(name, value).expect("header values built here hold no control characters")
}

/// Adds a header field.
pub(crate) fn add(m: &mut Message, name: impl Into<HeaderName>, value: impl Into<String>) {
    m.headers.push(header(name, value));
}

/// Sets a header field, replacing any of the name.
pub(crate) fn set(m: &mut Message, name: impl Into<HeaderName>, value: impl Into<String>) {
    m.headers.set(header(name, value));
}

/// Puts `sdp` in `m` as its body.
pub(crate) fn set_sdp(m: &mut Message, sdp: &SessionDescription) {
    set(m, StdHeader::ContentType, "application/sdp");
    m.body = sdp.to_bytes();
}

/// The methods we answer.
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, REFER, NOTIFY";

/// A request within `dialog`, with a fresh branch and the next CSeq (ACK and CANCEL take
/// the INVITE's CSeq instead; the caller sets it).
pub(crate) fn dialog_request(
    dialog: &mut Dialog,
    method: Method,
    via: &str,
    branch: &str,
    product: &str,
) -> Message {
    let uri = dialog
        .remote_target
        .clone()
        .or_else(|| {
            relay_sip::NameAddr::parse(&dialog.remote)
                .ok()
                .map(|n| n.uri)
        })
        .expect("a dialog's remote value is a valid name-addr");
    if !matches!(method, Method::Ack | Method::Cancel) {
        dialog.cseq += 1;
    }
    let mut m = Message::request(method.clone(), uri);
    add(
        &mut m,
        StdHeader::Via,
        format!("{via};branch={branch};rport"),
    );
    add(&mut m, StdHeader::MaxForwards, "70");
    add(&mut m, StdHeader::From, dialog.local.clone());
    add(&mut m, StdHeader::To, dialog.remote.clone());
    add(&mut m, StdHeader::CallId, dialog.call_id.clone());
    add(
        &mut m,
        StdHeader::CSeq,
        format!("{} {}", dialog.cseq, method),
    );
    add(&mut m, StdHeader::UserAgent, product.to_owned());
    m
}
