//! Access tokens: JSON Web Tokens (RFC 7519) signed with HS256 (HMAC-SHA-256, RFC 7518
//! §3.2) or EdDSA over Ed25519 (RFC 8037), issued at login and presented as
//! `Authorization: Bearer <token>`.
//!
//! A token is `base64url(header).base64url(claims).base64url(signature)` (RFC 7515 compact
//! form). The header names the algorithm and the signing key's `kid`; the claims are
//! [`Claims`]. A token lives [`ACCESS_TTL_S`] seconds and is not revocable before then: what
//! must outlive it (sessions, refresh) is checked elsewhere.
//!
//! Verification trusts nothing in the token until the signature is checked: the key is chosen
//! by `kid` among the configured ones, the algorithm must be that key's own (so neither
//! `alg: none` nor an HS256 token "signed" with an EdDSA public key passes, the algorithm
//! confusion of RFC 8725 §2.1), and times are checked against the caller's clock (`now_s`),
//! with no leeway on `exp`.
//!
//! Key rotation: configure the new key as current and the old one as previous, with the
//! rotation time. Tokens signed by the previous key are accepted only when issued at or
//! before the rotation, so the old key stops working [`ACCESS_TTL_S`] after it and can then be
//! removed; a leaked old key cannot mint tokens that outlive that.

use std::collections::HashSet;
use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use switchboard_core::Role;

/// Lifetime of an access token in seconds: 900 (15 minutes). `exp = iat + ACCESS_TTL_S`.
pub const ACCESS_TTL_S: i64 = 900;

/// How far in the future (seconds) a token's `iat` may be before it is refused: 60, for
/// clocks of several servers that disagree a little. A later `iat` means a forged or
/// mis-clocked token.
pub const MAX_IAT_SKEW_S: i64 = 60;

/// Fewest bytes an HS256 secret may have: 32. RFC 7518 §3.2 requires a key of at least the
/// hash output size (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The claims of an access token (RFC 7519 §4.1 registered names plus `tid` and `role`).
/// Times are seconds since the Unix epoch (RFC 7519 "NumericDate"), UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user's id.
    pub sub: Uuid,
    /// The user's tenant id.
    pub tid: Uuid,
    /// The user's role when the token was issued (wire names as in [`Role`]).
    pub role: Role,
    /// Expiry, seconds since the epoch: the token is refused from this second on.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Token id: a random UUID (v4), for logs and a future deny list.
    pub jti: Uuid,
}

/// Key material for signing tokens, as configured. `Debug` shows the algorithm only.
#[derive(Clone)]
pub enum SigningKey {
    /// HMAC-SHA-256 with a shared secret of at least [`MIN_HS256_SECRET_BYTES`] random bytes
    /// (raw bytes, not text to be decoded). Signs and verifies.
    Hs256 {
        /// The secret.
        secret: Vec<u8>,
    },
    /// Ed25519 (`EdDSA`): a PEM private key (PKCS#8, `-----BEGIN PRIVATE KEY-----`, as made by
    /// `openssl genpkey -algorithm ed25519`) and its PEM public key (SubjectPublicKeyInfo,
    /// `-----BEGIN PUBLIC KEY-----`, from `openssl pkey -pubout`).
    EdDsa {
        /// PKCS#8 PEM of the private key.
        private_pem: Vec<u8>,
        /// SPKI PEM of the matching public key.
        public_pem: Vec<u8>,
    },
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::Hs256 { .. } => f.write_str("SigningKey::Hs256 { secret: *** }"),
            SigningKey::EdDsa { .. } => f.write_str("SigningKey::EdDsa { private_pem: *** }"),
        }
    }
}

/// Generates an HS256 secret: [`MIN_HS256_SECRET_BYTES`] (32) bytes from the operating
/// system's CSPRNG, for a server started without a configured key. Tokens it signs stop
/// verifying when the process restarts (users log in again).
pub fn generate_hs256_secret() -> Vec<u8> {
    let mut secret = vec![0u8; MIN_HS256_SECRET_BYTES];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// A configured key that cannot be used. `which` is `"current"` or `"previous"`. Messages
/// name the problem, never the key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The HS256 secret is shorter than [`MIN_HS256_SECRET_BYTES`].
    #[error(
        "the {which} HS256 secret is {len} bytes; at least {MIN_HS256_SECRET_BYTES} random \
         bytes are needed (RFC 7518 section 3.2)"
    )]
    ShortSecret {
        /// `"current"` or `"previous"`.
        which: &'static str,
        /// Bytes given.
        len: usize,
    },
    /// The private PEM is not an Ed25519 PKCS#8 private key.
    #[error("the {which} EdDSA private key is not an Ed25519 private key in PKCS#8 PEM")]
    BadPrivatePem {
        /// `"current"` or `"previous"`.
        which: &'static str,
    },
    /// The public PEM is not an Ed25519 SubjectPublicKeyInfo public key.
    #[error("the {which} EdDSA public key is not an Ed25519 public key in PEM")]
    BadPublicPem {
        /// `"current"` or `"previous"`.
        which: &'static str,
    },
    /// A signature made with the private key does not verify with the public key.
    #[error("the {which} EdDSA private and public keys are not one key pair")]
    NotAPair {
        /// `"current"` or `"previous"`.
        which: &'static str,
    },
    /// The previous key has the same `kid` as the current one (rotation not done).
    #[error("the previous signing key is the same as the current one")]
    PreviousIsCurrent,
}

/// Why a token was refused. Both answer 401; neither message holds key material or claims.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Authentic, but `now_s >= exp` (RFC 7519 §4.1.4): the client should refresh.
    #[error("the access token has expired")]
    Expired,
    /// Malformed, signed by no configured key, with the wrong algorithm, or with claims that
    /// break a rule (the reason says which, in a few words).
    #[error("the access token is invalid: {0}")]
    Invalid(&'static str),
}

/// One verification key with its id and algorithm.
struct Key {
    kid: String,
    alg: Algorithm,
    decoding: DecodingKey,
}

/// The keys the server signs and verifies access tokens with: the current key (signs and
/// verifies) and, for a rotation, the previous one (verifies tokens issued up to
/// `rotated_at_s`). Build with [`TokenKeys::new`]; share behind an `Arc`.
///
/// Each key's `kid` is the first 16 hex digits of the SHA-256 of its verification material
/// (the HS256 secret, or the EdDSA public PEM as given), so it changes with the key and the
/// same configuration gives the same `kid` on every server. `Debug` shows kids and
/// algorithms only.
pub struct TokenKeys {
    current: Key,
    encoding: EncodingKey,
    previous: Option<Key>,
    rotated_at_s: i64,
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct K<'a>(&'a Key);
        impl fmt::Debug for K<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?} kid={}", self.0.alg, self.0.kid)
            }
        }
        f.debug_struct("TokenKeys")
            .field("current", &K(&self.current))
            .field("previous", &self.previous.as_ref().map(K))
            .field("rotated_at_s", &self.rotated_at_s)
            .finish()
    }
}

/// First 16 hex digits of SHA-256(material).
fn kid_of(material: &[u8]) -> String {
    Sha256::digest(material)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a configured key and makes its signing and verification halves.
fn load(key: &SigningKey, which: &'static str) -> Result<(Key, EncodingKey), KeyError> {
    match key {
        SigningKey::Hs256 { secret } => {
            if secret.len() < MIN_HS256_SECRET_BYTES {
                return Err(KeyError::ShortSecret {
                    which,
                    len: secret.len(),
                });
            }
            let key = Key {
                kid: kid_of(secret),
                alg: Algorithm::HS256,
                decoding: DecodingKey::from_secret(secret),
            };
            Ok((key, EncodingKey::from_secret(secret)))
        }
        SigningKey::EdDsa {
            private_pem,
            public_pem,
        } => {
            let encoding = EncodingKey::from_ed_pem(private_pem)
                .map_err(|_| KeyError::BadPrivatePem { which })?;
            let decoding = DecodingKey::from_ed_pem(public_pem)
                .map_err(|_| KeyError::BadPublicPem { which })?;
            // The PEM parsers only unwrap the DER; a sign-and-verify round shows that both
            // keys are real Ed25519 keys and belong together.
            let probe = b"switchboard signing key check";
            let signature = jsonwebtoken::crypto::sign(probe, &encoding, Algorithm::EdDSA)
                .map_err(|_| KeyError::BadPrivatePem { which })?;
            match jsonwebtoken::crypto::verify(&signature, probe, &decoding, Algorithm::EdDSA) {
                Ok(true) => {}
                Ok(false) => return Err(KeyError::NotAPair { which }),
                Err(_) => return Err(KeyError::BadPublicPem { which }),
            }
            let key = Key {
                kid: kid_of(public_pem),
                alg: Algorithm::EdDSA,
                decoding,
            };
            Ok((key, encoding))
        }
    }
}

impl TokenKeys {
    /// Loads the keys. `current` signs new tokens and verifies; `previous`, when given, only
    /// verifies tokens with `iat <= rotated_at_s` (seconds since the epoch when `current`
    /// replaced it; ignored without `previous`).
    ///
    /// Errors ([`KeyError`]): an HS256 secret under 32 bytes, a PEM that is not an Ed25519
    /// key, EdDSA halves that are not one pair, or a previous key equal to the current one.
    pub fn new(
        current: SigningKey,
        previous: Option<SigningKey>,
        rotated_at_s: i64,
    ) -> Result<TokenKeys, KeyError> {
        let (current, encoding) = load(&current, "current")?;
        let previous = match previous {
            Some(p) => {
                let (p, _) = load(&p, "previous")?;
                if p.kid == current.kid {
                    return Err(KeyError::PreviousIsCurrent);
                }
                Some(p)
            }
            None => None,
        };
        Ok(TokenKeys {
            current,
            encoding,
            previous,
            rotated_at_s,
        })
    }

    /// The `kid` new tokens carry (16 lowercase hex digits).
    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// Issues an access token for user `sub` of tenant `tid` with `role`, at `now_s`
    /// (seconds since the epoch): `iat = now_s`, `exp = now_s + ACCESS_TTL_S`, a random v4
    /// `jti`, signed with the current key, `kid` in the header. Returns the compact token
    /// (about 300 bytes) and its claims.
    ///
    /// Never fails in practice: [`TokenKeys::new`] has already signed with the key.
    pub fn issue(&self, sub: Uuid, tid: Uuid, role: Role, now_s: i64) -> (String, Claims) {
        let claims = Claims {
            sub,
            tid,
            role,
            exp: now_s.saturating_add(ACCESS_TTL_S),
            iat: now_s,
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(self.current.alg);
        header.kid = Some(self.current.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("signing with a key that TokenKeys::new has checked");
        (token, claims)
    }

    /// Verifies a compact token at `now_s` (seconds since the epoch) and returns its claims.
    ///
    /// In order: the header must parse and name a configured `kid` with that key's own
    /// algorithm and no `crit`; the signature must verify (RFC 7515); the claims must parse
    /// as [`Claims`]; `0 < exp - iat <= ACCESS_TTL_S`; `iat <= now_s + MAX_IAT_SKEW_S`; a
    /// token of the previous key must have `iat <= rotated_at_s`; and `now_s < exp`.
    ///
    /// Errors: [`TokenError::Expired`] when only the last rule fails (an authentic token whose
    /// time is up), [`TokenError::Invalid`] with a short reason for everything else.
    pub fn verify(&self, token: &str, now_s: i64) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| TokenError::Invalid("malformed token header"))?;
        let kid = header
            .kid
            .as_deref()
            .ok_or(TokenError::Invalid("no key id"))?;
        let (key, is_previous) = if kid == self.current.kid {
            (&self.current, false)
        } else {
            match &self.previous {
                Some(p) if kid == p.kid => (p, true),
                _ => return Err(TokenError::Invalid("unknown key id")),
            }
        };
        if header.alg != key.alg {
            return Err(TokenError::Invalid("algorithm does not match the key"));
        }
        if header.crit.is_some() {
            return Err(TokenError::Invalid("unsupported critical header"));
        }
        let mut validation = Validation::new(key.alg);
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(|e| {
                TokenError::Invalid(match e.kind() {
                    ErrorKind::InvalidSignature => "bad signature",
                    ErrorKind::InvalidAlgorithm => "algorithm does not match the key",
                    ErrorKind::Json(_) => "claims missing or malformed",
                    _ => "malformed token",
                })
            })?
            .claims;
        match claims.exp.checked_sub(claims.iat) {
            Some(life) if life > 0 && life <= ACCESS_TTL_S => {}
            _ => return Err(TokenError::Invalid("lifetime longer than allowed")),
        }
        if claims.iat > now_s.saturating_add(MAX_IAT_SKEW_S) {
            return Err(TokenError::Invalid("issued in the future"));
        }
        if is_previous && claims.iat > self.rotated_at_s {
            return Err(TokenError::Invalid("retired key used after the rotation"));
        }
        if now_s >= claims.exp {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The token keys of the server's settings: Ed25519 when both key files are given, else HS256
/// with the configured secret, else a random secret made now (tokens then end with the
/// process; a warning says so). The previous key (a rotation) stays valid for tokens issued
/// before this start.
///
/// Errors: a key file cannot be read, a secret is shorter than 32 bytes, a PEM is not an
/// Ed25519 key pair (each message names the setting).
pub fn keys_from_settings(j: &crate::app::JwtSettings) -> anyhow::Result<TokenKeys> {
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p).map_err(|e| anyhow::anyhow!("{what} {}: {e}", p.display()))
    };
    let current = match (&j.private_key_file, &j.public_key_file) {
        (Some(private), Some(public)) => SigningKey::EdDsa {
            private_pem: read(private, "SWITCHBOARD_JWT_PRIVATE_KEY_FILE")?,
            public_pem: read(public, "SWITCHBOARD_JWT_PUBLIC_KEY_FILE")?,
        },
        (None, None) => match &j.secret {
            Some(s) => SigningKey::Hs256 {
                secret: s.0.as_bytes().to_vec(),
            },
            None => {
                tracing::warn!(
                    "no SWITCHBOARD_JWT_SECRET: access tokens are signed with a random key and \
                     end when the server stops (clients refresh); set one to keep them, and on \
                     every server that shares the database"
                );
                SigningKey::Hs256 {
                    secret: generate_hs256_secret(),
                }
            }
        },
        _ => anyhow::bail!(
            "EdDSA needs both SWITCHBOARD_JWT_PRIVATE_KEY_FILE and SWITCHBOARD_JWT_PUBLIC_KEY_FILE"
        ),
    };
    let previous = match (
        &j.previous_private_key_file,
        &j.previous_public_key_file,
        &j.previous_secret,
    ) {
        (Some(private), Some(public), _) => Some(SigningKey::EdDsa {
            private_pem: read(private, "SWITCHBOARD_JWT_PREVIOUS_PRIVATE_KEY_FILE")?,
            public_pem: read(public, "SWITCHBOARD_JWT_PREVIOUS_PUBLIC_KEY_FILE")?,
        }),
        (None, None, Some(s)) => Some(SigningKey::Hs256 {
            secret: s.0.as_bytes().to_vec(),
        }),
        (None, None, None) => None,
        _ => anyhow::bail!(
            "a previous EdDSA key needs both SWITCHBOARD_JWT_PREVIOUS_PRIVATE_KEY_FILE and \
             SWITCHBOARD_JWT_PREVIOUS_PUBLIC_KEY_FILE"
        ),
    };
    let now_s = switchboard_core::time::now_ms().div_euclid(1000);
    TokenKeys::new(current, previous, now_s).map_err(|e| anyhow::anyhow!("access-token keys: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test-only Ed25519 key pairs (`openssl genpkey -algorithm ed25519`); never used outside
    /// these tests.
    const ED_A_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIHn1VCDmlAREygnW755iJtMEJJ2Pw4+qMn7jx/Mz0Ovg
-----END PRIVATE KEY-----
";
    const ED_A_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA5Uq9hQ6oUexLsz4dnQpJ1rLlB+QiEcuUrKQnMPudBEI=
-----END PUBLIC KEY-----
";
    const ED_B_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIN31LHkv0pgfP9WOu/5PsaJoKByl11yfe/gmFdKtM67D
-----END PRIVATE KEY-----
";
    const ED_B_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAhYZxb4PswMhvdr8nlvYTOxLjj84tM938beaQiBvHpUs=
-----END PUBLIC KEY-----
";

    const NOW: i64 = 1_760_000_000;

    fn hs(byte: u8) -> SigningKey {
        SigningKey::Hs256 {
            secret: vec![byte; 32],
        }
    }

    fn ed_a() -> SigningKey {
        SigningKey::EdDsa {
            private_pem: ED_A_PRIVATE.into(),
            public_pem: ED_A_PUBLIC.into(),
        }
    }

    fn ed_b() -> SigningKey {
        SigningKey::EdDsa {
            private_pem: ED_B_PRIVATE.into(),
            public_pem: ED_B_PUBLIC.into(),
        }
    }

    fn keys(k: SigningKey) -> TokenKeys {
        TokenKeys::new(k, None, 0).unwrap()
    }

    fn ids() -> (Uuid, Uuid) {
        (Uuid::new_v4(), Uuid::new_v4())
    }

    fn b64url(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    /// Signs arbitrary claims with an arbitrary header and key, as an attacker or a buggy
    /// issuer would.
    fn forge(alg: Algorithm, kid: &str, claims: &serde_json::Value, key: &EncodingKey) -> String {
        let mut header = Header::new(alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    fn claims_json(iat: i64, exp: i64) -> serde_json::Value {
        serde_json::json!({
            "sub": Uuid::new_v4(), "tid": Uuid::new_v4(), "role": "agent",
            "exp": exp, "iat": iat, "jti": Uuid::new_v4(),
        })
    }

    #[test]
    fn hs256_round_trip() {
        let k = keys(hs(7));
        let (sub, tid) = ids();
        let (token, claims) = k.issue(sub, tid, Role::Supervisor, NOW);
        assert_eq!(claims.exp, NOW + ACCESS_TTL_S);
        assert_eq!(claims.iat, NOW);
        assert_eq!(
            (claims.sub, claims.tid, claims.role),
            (sub, tid, Role::Supervisor)
        );
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid.as_deref(), Some(k.current_kid()));
        assert_eq!(k.verify(&token, NOW + 1).unwrap(), claims);
        // The role travels under its wire name.
        let raw: serde_json::Value =
            jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        assert_eq!(raw["role"], "supervisor");
        assert_eq!(raw["exp"], NOW + ACCESS_TTL_S);
    }

    #[test]
    fn eddsa_round_trip() {
        let k = keys(ed_a());
        let (sub, tid) = ids();
        let (token, claims) = k.issue(sub, tid, Role::PlatformAdmin, NOW);
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().alg,
            Algorithm::EdDSA
        );
        assert_eq!(k.verify(&token, NOW + ACCESS_TTL_S - 1).unwrap(), claims);
    }

    #[test]
    fn two_tokens_have_different_jti() {
        let k = keys(hs(7));
        let (sub, tid) = ids();
        let (a, ca) = k.issue(sub, tid, Role::Agent, NOW);
        let (b, cb) = k.issue(sub, tid, Role::Agent, NOW);
        assert_ne!(ca.jti, cb.jti);
        assert_ne!(a, b);
    }

    #[test]
    fn tampered_payload_is_refused() {
        for k in [keys(hs(7)), keys(ed_a())] {
            let (sub, tid) = ids();
            let (token, claims) = k.issue(sub, tid, Role::Agent, NOW);
            let parts: Vec<&str> = token.split('.').collect();
            let mut elevated = serde_json::to_value(&claims).unwrap();
            elevated["role"] = "platform_admin".into();
            let payload = b64url(&serde_json::to_vec(&elevated).unwrap());
            let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
            assert_eq!(
                k.verify(&tampered, NOW),
                Err(TokenError::Invalid("bad signature"))
            );
            // A flipped signature character as well.
            let mut sig = parts[2].to_owned();
            let last = sig.pop().unwrap();
            sig.push(if last == 'A' { 'B' } else { 'A' });
            let resigned = format!("{}.{}.{}", parts[0], parts[1], sig);
            assert!(matches!(
                k.verify(&resigned, NOW),
                Err(TokenError::Invalid(_))
            ));
        }
    }

    #[test]
    fn wrong_secret_is_refused_even_with_the_right_kid() {
        let k = keys(hs(7));
        let forged = forge(
            Algorithm::HS256,
            k.current_kid(),
            &claims_json(NOW, NOW + 60),
            &EncodingKey::from_secret(&[8u8; 32]),
        );
        assert_eq!(
            k.verify(&forged, NOW),
            Err(TokenError::Invalid("bad signature"))
        );
    }

    #[test]
    fn alg_none_is_refused() {
        let k = keys(hs(7));
        let header = format!(
            r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#,
            k.current_kid()
        );
        let body = serde_json::to_vec(&claims_json(NOW, NOW + 60)).unwrap();
        for sig in ["", "AAAA"] {
            let token = format!("{}.{}.{}", b64url(header.as_bytes()), b64url(&body), sig);
            assert!(matches!(k.verify(&token, NOW), Err(TokenError::Invalid(_))));
        }
    }

    #[test]
    fn alg_confusion_is_refused() {
        // The classic attack: HMAC "signed" with the EdDSA public key as the secret.
        let k = keys(ed_a());
        let forged = forge(
            Algorithm::HS256,
            k.current_kid(),
            &claims_json(NOW, NOW + 60),
            &EncodingKey::from_secret(ED_A_PUBLIC.as_bytes()),
        );
        assert_eq!(
            k.verify(&forged, NOW),
            Err(TokenError::Invalid("algorithm does not match the key"))
        );
        // Another HMAC size with the right secret is not HS256 either.
        let h = keys(hs(7));
        let forged = forge(
            Algorithm::HS384,
            h.current_kid(),
            &claims_json(NOW, NOW + 60),
            &EncodingKey::from_secret(&[7u8; 32]),
        );
        assert_eq!(
            h.verify(&forged, NOW),
            Err(TokenError::Invalid("algorithm does not match the key"))
        );
    }

    #[test]
    fn expires_at_exactly_exp() {
        let k = keys(hs(7));
        let (sub, tid) = ids();
        let (token, claims) = k.issue(sub, tid, Role::Agent, NOW);
        assert!(k.verify(&token, claims.exp - 1).is_ok());
        assert_eq!(k.verify(&token, claims.exp), Err(TokenError::Expired));
        assert_eq!(
            k.verify(&token, claims.exp + 3600),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn iat_in_the_future_is_refused_beyond_the_skew() {
        let k = keys(hs(7));
        let (sub, tid) = ids();
        let (token, _) = k.issue(sub, tid, Role::Agent, NOW + MAX_IAT_SKEW_S);
        assert!(k.verify(&token, NOW).is_ok());
        let (token, _) = k.issue(sub, tid, Role::Agent, NOW + MAX_IAT_SKEW_S + 1);
        assert_eq!(
            k.verify(&token, NOW),
            Err(TokenError::Invalid("issued in the future"))
        );
    }

    #[test]
    fn lifetime_longer_than_the_ttl_is_refused() {
        let k = keys(hs(7));
        let secret = EncodingKey::from_secret(&[7u8; 32]);
        let ok = forge(
            Algorithm::HS256,
            k.current_kid(),
            &claims_json(NOW, NOW + ACCESS_TTL_S),
            &secret,
        );
        assert!(k.verify(&ok, NOW).is_ok());
        for (iat, exp) in [(NOW, NOW + ACCESS_TTL_S + 1), (NOW, NOW), (NOW, NOW - 5)] {
            let long = forge(
                Algorithm::HS256,
                k.current_kid(),
                &claims_json(iat, exp),
                &secret,
            );
            assert_eq!(
                k.verify(&long, NOW),
                Err(TokenError::Invalid("lifetime longer than allowed")),
                "iat {iat} exp {exp}"
            );
        }
        // Overflowing arithmetic is refused, not a panic.
        let huge = forge(
            Algorithm::HS256,
            k.current_kid(),
            &claims_json(i64::MIN, i64::MAX),
            &secret,
        );
        assert!(matches!(k.verify(&huge, NOW), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn missing_or_wrong_claims_are_refused() {
        let k = keys(hs(7));
        let secret = EncodingKey::from_secret(&[7u8; 32]);
        let mut c = claims_json(NOW, NOW + 60);
        c.as_object_mut().unwrap().remove("tid");
        let t = forge(Algorithm::HS256, k.current_kid(), &c, &secret);
        assert_eq!(
            k.verify(&t, NOW),
            Err(TokenError::Invalid("claims missing or malformed"))
        );
        let mut c = claims_json(NOW, NOW + 60);
        c["role"] = "root".into();
        let t = forge(Algorithm::HS256, k.current_kid(), &c, &secret);
        assert!(matches!(k.verify(&t, NOW), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn unknown_or_missing_kid_is_refused() {
        let k = keys(hs(7));
        let other = keys(hs(9));
        let (sub, tid) = ids();
        let (token, _) = other.issue(sub, tid, Role::Agent, NOW);
        assert_eq!(
            k.verify(&token, NOW),
            Err(TokenError::Invalid("unknown key id"))
        );
        let no_kid = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims_json(NOW, NOW + 60),
            &EncodingKey::from_secret(&[7u8; 32]),
        )
        .unwrap();
        assert_eq!(
            k.verify(&no_kid, NOW),
            Err(TokenError::Invalid("no key id"))
        );
        for junk in ["", "a.b", "a.b.c", "....", "x.y.z.w"] {
            assert!(matches!(k.verify(junk, NOW), Err(TokenError::Invalid(_))));
        }
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_tokens_issued_before_it() {
        let rotated_at = NOW;
        let old = keys(ed_a());
        let (sub, tid) = ids();
        let (before, _) = old.issue(sub, tid, Role::Agent, rotated_at - 100);
        let (at, _) = old.issue(sub, tid, Role::Agent, rotated_at);
        let (after, _) = old.issue(sub, tid, Role::Agent, rotated_at + 1);

        let rotated = TokenKeys::new(hs(7), Some(ed_a()), rotated_at).unwrap();
        assert_ne!(rotated.current_kid(), old.current_kid());
        assert!(rotated.verify(&before, rotated_at + 10).is_ok());
        assert!(rotated.verify(&at, rotated_at + 10).is_ok());
        assert_eq!(
            rotated.verify(&after, rotated_at + 10),
            Err(TokenError::Invalid("retired key used after the rotation"))
        );
        // The previous key's tokens still expire as usual.
        assert_eq!(
            rotated.verify(&before, rotated_at - 100 + ACCESS_TTL_S),
            Err(TokenError::Expired)
        );
        // New tokens are signed with the new key and verify.
        let (fresh, _) = rotated.issue(sub, tid, Role::Agent, rotated_at + 10);
        assert_eq!(
            jsonwebtoken::decode_header(&fresh).unwrap().kid.as_deref(),
            Some(rotated.current_kid())
        );
        assert!(rotated.verify(&fresh, rotated_at + 11).is_ok());
        // After the previous key is dropped, its tokens are unknown.
        let later = keys(hs(7));
        assert_eq!(
            later.verify(&before, rotated_at),
            Err(TokenError::Invalid("unknown key id"))
        );
    }

    #[test]
    fn kid_is_16_hex_of_sha256_of_the_verification_material() {
        let k = keys(hs(7));
        let digest = Sha256::digest([7u8; 32]);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(k.current_kid(), &hex[..16]);
        let e = keys(ed_a());
        let digest = Sha256::digest(ED_A_PUBLIC.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(e.current_kid(), &hex[..16]);
        assert_ne!(keys(ed_b()).current_kid(), e.current_kid());
    }

    #[test]
    fn bad_keys_are_refused() {
        assert_eq!(
            TokenKeys::new(
                SigningKey::Hs256 {
                    secret: vec![1; 31]
                },
                None,
                0
            )
            .unwrap_err(),
            KeyError::ShortSecret {
                which: "current",
                len: 31
            }
        );
        assert_eq!(
            TokenKeys::new(hs(1), Some(SigningKey::Hs256 { secret: vec![] }), 0).unwrap_err(),
            KeyError::ShortSecret {
                which: "previous",
                len: 0
            }
        );
        let bad_private = SigningKey::EdDsa {
            private_pem: b"not a pem".to_vec(),
            public_pem: ED_A_PUBLIC.into(),
        };
        assert_eq!(
            TokenKeys::new(bad_private, None, 0).unwrap_err(),
            KeyError::BadPrivatePem { which: "current" }
        );
        let bad_public = SigningKey::EdDsa {
            private_pem: ED_A_PRIVATE.into(),
            public_pem: ED_A_PRIVATE.into(),
        };
        assert_eq!(
            TokenKeys::new(bad_public, None, 0).unwrap_err(),
            KeyError::BadPublicPem { which: "current" }
        );
        let mismatched = SigningKey::EdDsa {
            private_pem: ED_A_PRIVATE.into(),
            public_pem: ED_B_PUBLIC.into(),
        };
        assert_eq!(
            TokenKeys::new(mismatched, None, 0).unwrap_err(),
            KeyError::NotAPair { which: "current" }
        );
        assert_eq!(
            TokenKeys::new(hs(1), Some(hs(1)), 0).unwrap_err(),
            KeyError::PreviousIsCurrent
        );
    }

    #[test]
    fn debug_output_holds_no_key_material() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let k = TokenKeys::new(
            SigningKey::Hs256 {
                secret: secret.clone(),
            },
            Some(ed_a()),
            NOW,
        )
        .unwrap();
        let shown = format!("{k:?} {:?} {:?}", SigningKey::Hs256 { secret }, ed_a());
        assert!(shown.contains(k.current_kid()), "{shown}");
        assert!(
            shown.contains("HS256") && shown.contains("EdDSA"),
            "{shown}"
        );
        for needle in ["0123456789abcdef", "MC4CAQAw", "48, 49", "PRIVATE"] {
            assert!(!shown.contains(needle), "{needle} in {shown}");
        }
        let err = KeyError::ShortSecret {
            which: "current",
            len: 3,
        }
        .to_string();
        assert!(err.contains("3 bytes") && err.contains("32"), "{err}");
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_usable() {
        let a = generate_hs256_secret();
        let b = generate_hs256_secret();
        assert_eq!(a.len(), MIN_HS256_SECRET_BYTES);
        assert_ne!(a, b);
        let k = keys(SigningKey::Hs256 { secret: a });
        let (sub, tid) = ids();
        let (t, _) = k.issue(sub, tid, Role::Agent, NOW);
        assert!(k.verify(&t, NOW).is_ok());
    }
}
