//! User passwords: the policy a new password must meet, and argon2id hashing.
//!
//! Policy (OWASP ASVS v4.0.3 §2.1 and NIST SP 800-63B §5.1.1.2): at least
//! [`MIN_PASSWORD_CHARS`] characters, at most [`MAX_PASSWORD_CHARS`], no composition rules,
//! and refused when it is common or easy to guess, as estimated by the `zxcvbn` crate (the
//! Dropbox estimator, which checks common-password, name and word lists, keyboard patterns,
//! dates, sequences and the user's own email and name).
//!
//! Storage (OWASP Password Storage Cheat Sheet, "Argon2id"): argon2id, m = 19,456 KiB
//! (19 MiB), t = 2 iterations, p = 1 lane, a random 16-byte salt, kept as a PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`).
//!
//! [`hash`], [`verify`] and [`verify_dummy`] each take tens of milliseconds of one core and
//! 19 MiB of memory: async callers run them in `tokio::task::spawn_blocking`, never on a
//! runtime worker. [`check_policy`] is cheaper (zxcvbn reads at most the first 100
//! characters; around a millisecond) but is CPU work too and belongs there as well.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// Fewest characters (Unicode scalar values, `str::chars`, not bytes) a password may have:
/// 12, after OWASP ASVS v4.0.3 requirement 2.1.1.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Most characters a password may have: 1024. NIST SP 800-63B asks that at least 64 be
/// allowed; the bound only stops a client from making every login hash megabytes.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Lowest `zxcvbn` score accepted: 3 ("safely unguessable: moderate protection from
/// offline slow-hash scenario", more than 10^8 guesses). Scores run 0 to 4.
pub const MIN_STRENGTH_SCORE: u8 = 3;

/// Argon2id memory cost in KiB (OWASP Password Storage Cheat Sheet: 19 MiB).
pub const ARGON2_M_COST_KIB: u32 = 19 * 1024;
/// Argon2id iterations (OWASP: 2 with 19 MiB).
pub const ARGON2_T_COST: u32 = 2;
/// Argon2id lanes (OWASP: 1).
pub const ARGON2_P_COST: u32 = 1;

/// Largest costs [`verify`] accepts from a stored hash. A PHC string carries its own
/// parameters, so a corrupted or planted `m=4294967295` would otherwise make a login
/// allocate terabytes and abort the process. These leave room to raise the parameters later
/// (up to 256 MiB, 16 iterations, 8 lanes) without letting a hash take the server down.
const MAX_VERIFY_M_COST_KIB: u32 = 256 * 1024;
const MAX_VERIFY_T_COST: u32 = 16;
const MAX_VERIFY_P_COST: u32 = 8;

/// A fixed hash with the current parameters, for [`verify_dummy`] (of the password `x`, which
/// does not matter: the answer is thrown away). A test checks that its parameters are the
/// current ones, so it must be replaced when they change.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$v9JE1O3Ny2R32tY2lt0CQw$37sd1l1EiWUc7vaAswF2GA9AOandFWzPaprZk87obxA";

/// Why a new password was refused. Its `Display` is one English sentence meant for the
/// user (a 422 problem's `detail`); it never repeats the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejected {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters; `chars` is the count given.
    #[error("the password is too short: {chars} characters, at least {MIN_PASSWORD_CHARS}")]
    TooShort {
        /// Characters (`str::chars`) in the refused password.
        chars: usize,
    },
    /// More than [`MAX_PASSWORD_CHARS`] characters; `chars` is the count given.
    #[error("the password is too long: {chars} characters, at most {MAX_PASSWORD_CHARS}")]
    TooLong {
        /// Characters (`str::chars`) in the refused password.
        chars: usize,
    },
    /// `zxcvbn` scored it below [`MIN_STRENGTH_SCORE`]; `reason` is its warning and
    /// suggestions (English sentences), e.g. "This is a top-10 common password."
    #[error("the password is too common or easy to guess: {reason}")]
    TooWeak {
        /// zxcvbn's feedback, or a generic sentence when it gave none.
        reason: String,
    },
}

/// Checks a new password against the policy (module docs). `user_inputs` are the words
/// specific to this user that must not make up the password: pass the email and the display
/// name. Each also counts split at every character that is not a letter or digit, and with
/// those characters removed, so `alice.smith@example.com` also rules out `alice`, `smith`,
/// `example` and `alicesmithexamplecom`, and `Alice Smith` rules out `alicesmith`.
///
/// Errors: [`PasswordRejected::TooShort`] under 12 characters, [`PasswordRejected::TooLong`]
/// over 1024, [`PasswordRejected::TooWeak`] for a zxcvbn score under 3. Length is checked
/// first, so a too-long password is never fed to zxcvbn.
pub fn check_policy(password: &str, user_inputs: &[&str]) -> Result<(), PasswordRejected> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordRejected::TooShort { chars });
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordRejected::TooLong { chars });
    }
    let mut inputs: Vec<String> = Vec::new();
    for input in user_inputs {
        inputs.push((*input).to_owned());
        let words = input
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 3);
        inputs.extend(words.map(str::to_owned));
        inputs.push(input.chars().filter(|c| c.is_alphanumeric()).collect());
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let entropy = zxcvbn::zxcvbn(password, &inputs);
    if u8::from(entropy.score()) >= MIN_STRENGTH_SCORE {
        return Ok(());
    }
    let reason = entropy
        .feedback()
        .map(|f| f.to_string().trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "Add another word or two. Uncommon words are better.".to_owned());
    Err(PasswordRejected::TooWeak { reason })
}

/// The argon2id hasher with the OWASP parameters.
fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .expect("the OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password for storage: an argon2id PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<22-char salt>$<43-char hash>`, about 97 bytes) with a
/// fresh random 16-byte salt from the operating system, so two hashes of one password differ.
/// Does not apply the policy: call [`check_policy`] first for a new password.
///
/// CPU- and memory-heavy (see the module docs): run it in `spawn_blocking`.
///
/// Panics only when the operating system's random number generator fails.
pub fn hash(password: &str) -> String {
    hasher()
        .hash_password(password.as_bytes())
        .expect("argon2id hashing (fails only when the OS RNG does)")
        .to_string()
}

/// True when `password` matches the PHC string `phc` made by [`hash`]. False, never a panic,
/// when it does not match or `phc` is malformed, is not argon2id, or asks for more than
/// 256 MiB, 16 iterations or 8 lanes. The comparison of the outputs is constant-time.
///
/// CPU- and memory-heavy (see the module docs): run it in `spawn_blocking`. Call
/// [`verify_dummy`] instead when there is no account, so both answers take as long.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST_KIB
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        return false;
    }
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Does the work of one [`verify`] against a fixed hash with the current parameters and
/// throws the answer away. A login for an email with no account calls it, so the answer
/// takes as long as for a wrong password and its timing does not tell whether the account
/// exists (OWASP Authentication Cheat Sheet, "Authentication Responses").
///
/// CPU- and memory-heavy (see the module docs): run it in `spawn_blocking`.
pub fn verify_dummy(password: &str) {
    std::hint::black_box(verify(password, DUMMY_HASH));
}

/// A random password of 20 letters and digits (about 119 bits), for the bootstrap admin
/// when none is configured.
pub fn generate() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRONG: &str = "quartz ladle umbrella 71 fjord";

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert_eq!(
            check_policy("Xk9!mQ2#vL7", &[]),
            Err(PasswordRejected::TooShort { chars: 11 })
        );
        // 11 two-byte characters are 22 bytes but still 11 characters.
        let accented = "éàüöçñøåßîê";
        assert_eq!(accented.len(), 22);
        assert_eq!(
            check_policy(accented, &[]),
            Err(PasswordRejected::TooShort { chars: 11 })
        );
        assert_eq!(
            check_policy("", &[]),
            Err(PasswordRejected::TooShort { chars: 0 })
        );
        // Twelve random characters pass.
        assert_eq!(check_policy("Xk9!mQ2#vL7p", &[]), Ok(()));
    }

    #[test]
    fn too_long_is_refused() {
        let long = "ab1!".repeat(256) + "x";
        assert_eq!(long.chars().count(), 1025);
        assert_eq!(
            check_policy(&long, &[]),
            Err(PasswordRejected::TooLong { chars: 1025 })
        );
        // 1024 characters of varied text pass (zxcvbn reads the first 100).
        let ok: String = (0..1024)
            .map(|i| char::from(b'!' + ((i * 37 + i / 7) % 90) as u8))
            .collect();
        assert_eq!(check_policy(&ok, &[]), Ok(()));
    }

    #[test]
    fn common_and_patterned_passwords_are_refused() {
        for weak in [
            "password1234",
            "123456789012",
            "qwertyuiopasdf",
            "aaaaaaaaaaaaaaaa",
            "Password2024!",
            "iloveyou12345",
            "abcdefghijklmnop",
        ] {
            match check_policy(weak, &[]) {
                Err(PasswordRejected::TooWeak { reason }) => assert!(!reason.is_empty(), "{weak}"),
                other => panic!("{weak}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_users_own_email_and_name_are_weak() {
        let inputs = ["alice.smith@example.com", "Alice Smith"];
        for weak in [
            "alice.smith@example.com2024",
            "alicesmith2024!",
            "AliceSmithAlice",
        ] {
            assert!(
                matches!(
                    check_policy(weak, &inputs),
                    Err(PasswordRejected::TooWeak { .. })
                ),
                "{weak}"
            );
        }
        assert_eq!(check_policy(STRONG, &inputs), Ok(()));
    }

    #[test]
    fn user_inputs_make_a_difference() {
        // Strong for anyone else, weak for the user whose email it contains.
        let pw = "zorbinax.quell@example.com";
        assert_eq!(check_policy(pw, &[]), Ok(()));
        assert!(matches!(
            check_policy(pw, &["zorbinax.quell@example.com"]),
            Err(PasswordRejected::TooWeak { .. })
        ));
    }

    #[test]
    fn messages_are_for_people() {
        assert_eq!(
            PasswordRejected::TooShort { chars: 8 }.to_string(),
            "the password is too short: 8 characters, at least 12"
        );
        assert_eq!(
            PasswordRejected::TooLong { chars: 2000 }.to_string(),
            "the password is too long: 2000 characters, at most 1024"
        );
        let Err(e) = check_policy("password1234", &[]) else {
            panic!("accepted");
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("the password is too common or easy to guess: "),
            "{msg}"
        );
        assert!(!msg.contains("password1234"), "{msg}");
        assert!(msg.len() > "the password is too common or easy to guess: ".len() + 5);
    }

    #[test]
    fn hash_is_argon2id_with_owasp_parameters_and_a_fresh_salt() {
        let a = hash(STRONG);
        let b = hash(STRONG);
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "two hashes of one password share a salt");
        let parsed = PasswordHash::new(&a).unwrap();
        assert_eq!(parsed.salt.unwrap().len(), 16);
        assert_eq!(parsed.hash.unwrap().len(), 32);
        assert!(verify(STRONG, &a));
        assert!(verify(STRONG, &b));
    }

    #[test]
    fn verify_refuses_wrong_passwords() {
        let h = hash(STRONG);
        assert!(!verify("quartz ladle umbrella 71 fjorD", &h));
        assert!(!verify("", &h));
        assert!(!verify(&format!("{STRONG} "), &h));
    }

    #[test]
    fn verify_is_false_for_malformed_or_foreign_hashes() {
        let h = hash(STRONG);
        let mut cut = h.clone();
        cut.truncate(h.len() - 5);
        let other_algorithm = h.replacen("$argon2id$", "$argon2i$", 1);
        let bad_salt = h.replacen("$m=19456,t=2,p=1$", "$m=19456,t=2,p=1$!!", 1);
        for phc in [
            "",
            "garbage",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            cut.as_str(),
            other_algorithm.as_str(),
            bad_salt.as_str(),
        ] {
            assert!(!verify(STRONG, phc), "{phc}");
        }
    }

    #[test]
    fn verify_refuses_hashes_that_ask_for_too_much_work() {
        // Without the cap this would try to allocate 4 TiB and abort the test process.
        let h = hash(STRONG);
        for params in [
            "m=4294967295,t=2,p=1",
            "m=19456,t=1000000,p=1",
            "m=19456,t=2,p=255",
        ] {
            let greedy = h.replacen("m=19456,t=2,p=1", params, 1);
            let start = std::time::Instant::now();
            assert!(!verify(STRONG, &greedy), "{params}");
            assert!(
                start.elapsed() < std::time::Duration::from_millis(1000),
                "{params}"
            );
        }
    }

    #[test]
    fn the_dummy_hash_has_the_current_parameters() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let fresh_phc = hash(STRONG);
        let fresh = PasswordHash::new(&fresh_phc).unwrap();
        assert_eq!(dummy.algorithm, fresh.algorithm);
        assert_eq!(dummy.version, fresh.version);
        assert_eq!(
            Params::try_from(&dummy).unwrap(),
            Params::try_from(&fresh).unwrap()
        );
        assert_eq!(dummy.salt.unwrap().len(), fresh.salt.unwrap().len());
        assert_eq!(dummy.hash.unwrap().len(), fresh.hash.unwrap().len());
        // It parses and verifies (against the password it was made from), so
        // `verify_dummy` does the whole computation rather than failing early.
        assert!(verify("x", DUMMY_HASH));
        verify_dummy(STRONG);
    }
}
