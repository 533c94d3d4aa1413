//! Field checks shared by the administrative routes; each error is a 422 naming the field.

use crate::error::ApiError;

/// A display name: 1–`max` characters (not bytes), not blank, no U+0000 (PostgreSQL cannot
/// store it in `text`), no other control character and no bidirectional override.
pub fn name(field: &str, v: &str, max: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if v.contains('\0') {
        return Err(ApiError::invalid(field, "must not contain U+0000 (NUL)"));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    // Bidirectional overrides and isolates (Unicode TR 9) make a name display as another.
    if v.chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        return Err(ApiError::invalid(
            field,
            "must not contain bidirectional override characters",
        ));
    }
    Ok(())
}

/// A tenant slug: 1–63 of `a-z 0-9 -`, starting with a letter or digit (usable in a host name
/// or a URL path).
pub fn slug(v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "slug",
            "must be 1 to 63 of a-z, 0-9 and -, not starting with -",
        ))
    }
}

/// An IANA time-zone name known to the tz database (`Europe/Paris`, `UTC`).
pub fn time_zone(v: &str) -> Result<(), ApiError> {
    v.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        ApiError::invalid(
            "time_zone",
            format!(
                "`{v}` is not an IANA time zone (e.g. `Europe/Paris`, `America/New_York`, `UTC`)"
            ),
        )
    })
}

/// An ISO 3166-1 alpha-2 region that has a telephone numbering plan (`FR`, `US`): what national
/// phone numbers are read against (libphonenumber's regions, via the `phonenumber` crate).
/// Answers it upper-case.
pub fn region(v: &str) -> Result<String, ApiError> {
    let up = v.to_ascii_uppercase();
    if up.len() == 2 && up.parse::<phonenumber::country::Id>().is_ok() {
        Ok(up)
    } else {
        Err(ApiError::invalid(
            "default_region",
            format!("`{v}` is not an ISO 3166-1 alpha-2 country with a numbering plan (e.g. `FR`, `US`)"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_refuse_what_they_say() {
        assert!(name("name", "Acme", 200).is_ok());
        assert!(name("name", " ", 200).is_err());
        assert!(name("name", "a\0b", 200).is_err());
        assert!(name("name", "a\nb", 200).is_err());
        assert!(name("name", "evil\u{202E}gpj.exe", 200).is_err());
        assert!(
            name("name", &"é".repeat(200), 200).is_ok(),
            "characters, not bytes"
        );
        assert!(name("name", &"é".repeat(201), 200).is_err());
        assert!(slug("acme-2").is_ok());
        for bad in ["", "-a", "Acme", "a_b", "a b", &"a".repeat(64)] {
            assert!(slug(bad).is_err(), "{bad}");
        }
        assert!(time_zone("Europe/Paris").is_ok());
        assert!(time_zone("UTC").is_ok());
        assert!(time_zone("Mars/Olympus").is_err());
        assert_eq!(region("fr").unwrap(), "FR");
        assert!(region("XX").is_err());
        assert!(region("FRA").is_err());
    }
}

/// Skills with levels: each name 1–64 of `A-Z a-z 0-9 . _ -`, each level 0–10, at most 100.
pub fn skills(field: &str, v: &std::collections::BTreeMap<String, u8>) -> Result<(), ApiError> {
    if v.len() > 100 {
        return Err(ApiError::invalid(field, "at most 100 skills"));
    }
    for (k, level) in v {
        let ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(ApiError::invalid(
                field,
                format!("skill `{k}`: names are 1–64 of A-Z a-z 0-9 . _ -"),
            ));
        }
        if *level > 10 {
            return Err(ApiError::invalid(
                field,
                format!("skill `{k}`: level must be between 0 and 10"),
            ));
        }
    }
    Ok(())
}
