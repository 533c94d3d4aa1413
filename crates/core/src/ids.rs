//! Identifiers chosen by clients: queue ids, agent ids and the external id of a call.
//! Each type can only hold a valid value (validated on construction).

use std::fmt;

/// Why a client-chosen identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier is empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than this many bytes.
    #[error("must be at most {0} characters")]
    TooLong(usize),
    /// Contains a character the identifier type does not allow.
    #[error("may contain only letters, digits and . _ - : / # @ +")]
    BadChar,
}

fn check(s: &str, max: usize, extra: &[char]) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > max {
        return Err(IdError::TooLong(max));
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
    {
        return Err(IdError::BadChar);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        /// From a JSON string, validated; the error message is the [`IdError`]'s.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            /// Validates without copying. Errors: [`IdError`].
            fn try_from(s: String) -> Result<Self, IdError> {
                check(&s, $max, $extra)?;
                Ok(Self(s))
            }
        }

        impl $name {
            /// Longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps `s`. Errors: [`IdError`].
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $max, $extra)?;
                Ok(Self(s.to_owned()))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// A queue id chosen by the tenant (`medical_spanish`, `PS`): 1–64 of `A-Z a-z 0-9 . _ -`.
    QueueId,
    64,
    &['.', '_', '-']
);
string_id!(
    /// An agent id as the telephony knows it (`agent-7`, `SHARON`, `sip:1001@pbx`): 1–128 of
    /// letters, digits and `. _ - : / # @ +`.
    AgentId,
    128,
    &['.', '_', '-', ':', '/', '#', '@', '+']
);
string_id!(
    /// The client's id for a call (Twilio CallSid, an Asterisk uniqueid, `1999-08-01/43678/0:10:10`):
    /// 1–128 of letters, digits and `. _ - : / # @ +`.
    ExternalCallId,
    128,
    &['.', '_', '-', ':', '/', '#', '@', '+']
);

/// A tenant's id (UUIDv7), chosen by Switchboard. A newtype so that a tenant id is never
/// confused with a call's or a key's id: every repository call takes one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct TenantId(pub uuid::Uuid);

impl TenantId {
    /// A new time-ordered id (UUIDv7).
    pub fn new() -> Self {
        TenantId(uuid::Uuid::now_v7())
    }

    /// The UUID.
    pub fn uuid(self) -> uuid::Uuid {
        self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId(uuid::Uuid::nil())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<uuid::Uuid> for TenantId {
    fn from(u: uuid::Uuid) -> Self {
        TenantId(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_world_ids() {
        assert!(QueueId::parse("medical_spanish").is_ok());
        assert!(QueueId::parse("PS").is_ok());
        assert!(ExternalCallId::parse("CA1234567890abcdef1234567890abcdef").is_ok());
        assert!(ExternalCallId::parse("1999-08-01/43678/0:10:10").is_ok());
        assert!(ExternalCallId::parse("1700000000.42").is_ok());
        assert!(AgentId::parse("sip:1001@pbx.example").is_ok());
    }

    #[test]
    fn refuses_bad_ids() {
        assert_eq!(QueueId::parse(""), Err(IdError::Empty));
        assert_eq!(QueueId::parse("has space"), Err(IdError::BadChar));
        assert_eq!(QueueId::parse("a/b"), Err(IdError::BadChar));
        assert_eq!(QueueId::parse(&"x".repeat(65)), Err(IdError::TooLong(64)));
        assert_eq!(ExternalCallId::parse("é"), Err(IdError::BadChar));
    }

    #[test]
    fn serde_validates_like_parse() {
        let q: QueueId = serde_json::from_str(r#""PS""#).unwrap();
        assert_eq!(serde_json::to_string(&q).unwrap(), r#""PS""#);
        let e = serde_json::from_str::<QueueId>(r#""a\u0000b""#).unwrap_err();
        assert!(e.to_string().contains("may contain only"), "{e}");
        assert!(serde_json::from_str::<AgentId>(r#""""#).is_err());
    }
}
