//! The control-socket protocol, version [`SCHEMA_VERSION`] (`docs/control-socket.md`): one
//! JSON request per line ([`Envelope`]), one JSON [`Response`] per line.
//!
//! ```text
//! {"version":1,"op":"add_call","call":{...CallSpec...}}      -> {"ok":true,"result":null}
//! {"version":1,"op":"modify_call","call":{...}}              -> {"ok":true,"result":null}
//! {"version":1,"op":"remove_call","id":"c1"}                 -> {"ok":true,"result":{call counters}}
//! {"version":1,"op":"list_calls"}                            -> {"ok":true,"result":["c1",...]}
//! {"version":1,"op":"stats","id":"c1"}  (id optional)        -> {"ok":true,"result":{...}}
//! {"version":1,"op":"core_map"}                              -> {"ok":true,"result":{...}}
//! ```

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::schema::{CallSpec, SCHEMA_VERSION};

/// One request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// Install a call; its worker is chosen by its local ports.
    AddCall {
        /// The call.
        call: CallSpec,
    },
    /// Replace a call's media, keeping SRTP contexts whose key is unchanged.
    ModifyCall {
        /// The call, with the id of an installed one.
        call: CallSpec,
    },
    /// Remove a call; answers its final counters.
    RemoveCall {
        /// The call's id.
        id: String,
    },
    /// The ids of every installed call.
    ListCalls,
    /// A call's counters, or (without an id) the workers'.
    Stats {
        /// The call's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// Which worker runs where and polls what.
    CoreMap,
}

/// A request with the protocol version, as it travels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Must be [`SCHEMA_VERSION`].
    pub version: u32,
    /// The request.
    #[serde(flatten)]
    pub request: Request,
}

impl Envelope {
    /// `request` at this build's version.
    pub fn new(request: Request) -> Envelope {
        Envelope {
            version: SCHEMA_VERSION,
            request,
        }
    }

    /// Parses one request line and checks its version; the error is the text to answer.
    pub fn parse(line: &str) -> Result<Envelope, String> {
        let env: Envelope = serde_json::from_str(line).map_err(|e| format!("bad request: {e}"))?;
        if env.version != SCHEMA_VERSION {
            return Err(format!(
                "unsupported version {} (this relay speaks {SCHEMA_VERSION})",
                env.version
            ));
        }
        Ok(env)
    }
}

/// One response: `{"ok":true,"result":...}` or `{"ok":false,"error":"..."}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// Done; the result (`null` for requests that return nothing).
    Ok(Value),
    /// Refused or failed, and why.
    Err(String),
}

impl Serialize for Response {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Response", 2)?;
        match self {
            Response::Ok(result) => {
                st.serialize_field("ok", &true)?;
                st.serialize_field("result", result)?;
            }
            Response::Err(error) => {
                st.serialize_field("ok", &false)?;
                st.serialize_field("error", error)?;
            }
        }
        st.end()
    }
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            ok: bool,
            #[serde(default)]
            result: Value,
            #[serde(default)]
            error: Option<String>,
        }
        let raw = Raw::deserialize(d)?;
        match (raw.ok, raw.error) {
            (true, _) => Ok(Response::Ok(raw.result)),
            (false, Some(e)) => Ok(Response::Err(e)),
            (false, None) => Err(D::Error::custom("a failed response without an error")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_travel_as_documented() {
        let line =
            serde_json::to_string(&Envelope::new(Request::RemoveCall { id: "c1".into() })).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&line).unwrap(),
            json!({"version": 1, "op": "remove_call", "id": "c1"})
        );
        let line = serde_json::to_string(&Envelope::new(Request::Stats { id: None })).unwrap();
        assert_eq!(line, r#"{"version":1,"op":"stats"}"#);
        for text in [
            r#"{"version":1,"op":"list_calls"}"#,
            r#"{"version":1,"op":"core_map"}"#,
            r#"{"version":1,"op":"stats","id":"x"}"#,
            r#"{"version":1,"op":"add_call","call":{"id":"c","media":[{"a":{"local":"198.18.0.1:4000"},"b":{"local":"198.18.0.1:4002"}}]}}"#,
        ] {
            let env = Envelope::parse(text).unwrap();
            let again = serde_json::to_string(&env).unwrap();
            assert_eq!(Envelope::parse(&again).unwrap(), env, "{text}");
        }
    }

    #[test]
    fn bad_requests_are_refused_with_a_reason() {
        let e = Envelope::parse(r#"{"version":2,"op":"list_calls"}"#).unwrap_err();
        assert!(e.contains("unsupported version 2"), "{e}");
        let e = Envelope::parse(r#"{"version":1,"op":"reboot"}"#).unwrap_err();
        assert!(e.starts_with("bad request:"), "{e}");
        let e = Envelope::parse(r#"{"version":1,"op":"remove_call"}"#).unwrap_err();
        assert!(e.contains("id"), "{e}");
        assert!(Envelope::parse("not json").is_err());
    }

    #[test]
    fn responses_round_trip() {
        for r in [
            Response::Ok(Value::Null),
            Response::Ok(json!(["a", "b"])),
            Response::Err("no call x".into()),
        ] {
            let text = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<Response>(&text).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_string(&Response::Ok(Value::Null)).unwrap(),
            r#"{"ok":true,"result":null}"#
        );
        assert!(serde_json::from_str::<Response>(r#"{"ok":false}"#).is_err());
    }
}
