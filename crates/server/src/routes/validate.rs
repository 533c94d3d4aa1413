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

/// Optional free text (a DID's name or notes, a destination's compatibility strings): when
/// given, as [`name`] with at most `max` characters.
pub fn opt_text(field: &str, v: Option<&str>, max: usize) -> Result<(), ApiError> {
    v.map_or(Ok(()), |v| name(field, v, max))
}

/// Optional multi-line text (a DID's notes): when given, at most `max` characters, line
/// breaks and tabs allowed, no other control character (U+0000 included) and no
/// bidirectional override.
pub fn opt_text_multiline(field: &str, v: Option<&str>, max: usize) -> Result<(), ApiError> {
    let Some(v) = v else { return Ok(()) };
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let flat: String = v
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    if flat.trim().is_empty() {
        return Ok(());
    }
    name(field, &flat, max)
}

/// The E.164 form (`+33123456789`) of a phone number written internationally
/// (`+33 1 23 45 67 89`) or, given the tenant's `region`, nationally (`01 23 45 67 89`), when
/// libphonenumber (the `phonenumber` crate) knows it as a valid number. `None` otherwise.
pub fn parse_e164(v: &str, region: Option<&str>) -> Option<String> {
    if v.is_empty() || v.len() > 64 || v.chars().any(char::is_control) {
        return None;
    }
    let country = region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
    let n = phonenumber::parse(country, v).ok()?;
    n.is_valid()
        .then(|| n.format().mode(phonenumber::Mode::E164).to_string())
}

/// [`parse_e164`], or a 422 naming `field`.
pub fn e164(field: &str, v: &str, region: Option<&str>) -> Result<String, ApiError> {
    parse_e164(v, region).ok_or_else(|| {
        let hint = match region {
            Some(r) => format!("international (`+33…`) or national for the tenant's region {r}"),
            None => "international (`+33…`); set the tenant's `default_region` to write national numbers".into(),
        };
        ApiError::invalid(field, format!("`{v}` is not a valid phone number: write it {hint}"))
    })
}

/// A SIP URI (RFC 3261 §19.1): `sip:` or `sips:`, an optional `user@`, a host (name, IPv4, or
/// `[IPv6]`), an optional `:port` (1–65535), then optional `;params` and `?headers`; at most
/// 512 characters, no space or control character.
pub fn sip_uri(field: &str, v: &str) -> Result<(), ApiError> {
    let bad = |why: &str| ApiError::invalid(field, format!("`{v}` is not a SIP URI: {why}"));
    if v.len() > 512 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("at most 512 characters, without spaces"));
    }
    let lower = v.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))
        .ok_or_else(|| bad("it must start with `sip:` or `sips:`"))?;
    let hostport = rest.split([';', '?']).next().unwrap_or_default();
    let hostport = match hostport.rsplit_once('@') {
        Some((user, hp)) if !user.is_empty() => hp,
        Some(_) => return Err(bad("the user part before `@` is empty")),
        None => hostport,
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("the IPv6 address is not valid"));
        }
        (None, after.strip_prefix(':').map(str::to_owned))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (Some(h.to_owned()), Some(p.to_owned())),
            None => (Some(hostport.to_owned()), None),
        }
    };
    if let Some(h) = host {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let h = h.strip_suffix('.').unwrap_or(&h);
        if h.is_empty() || !h.split('.').all(label_ok) {
            return Err(bad("the host must be a domain name or an IP address"));
        }
    }
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(bad("the port must be 1 to 65535"));
        }
    }
    Ok(())
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

    #[test]
    fn phone_numbers_become_e164() {
        assert_eq!(
            parse_e164("+33 1 23 45 67 89", None).as_deref(),
            Some("+33123456789")
        );
        assert_eq!(
            parse_e164("01 23 45 67 89", Some("FR")).as_deref(),
            Some("+33123456789")
        );
        assert_eq!(
            parse_e164("+44 20 7946 0000", Some("FR")).as_deref(),
            Some("+442079460000")
        );
        assert_eq!(
            parse_e164("01 23 45 67 89", None),
            None,
            "national needs a region"
        );
        assert_eq!(parse_e164("+33 1", None), None, "too short");
        assert_eq!(parse_e164("hello", Some("FR")), None);
        assert_eq!(parse_e164("", Some("FR")), None);
        assert!(e164("number", "nope", None)
            .unwrap_err()
            .detail
            .contains("default_region"));
    }

    #[test]
    fn sip_uris_are_checked() {
        for ok in [
            "sip:cc1@203.0.113.5",
            "sip:cc1@203.0.113.5:5070;transport=udp",
            "sips:agent@pbx.example.com",
            "SIP:pbx.example.com",
            "sip:+33123456789@gw.example;user=phone?X-A=b",
            "sip:cc@[2001:db8::1]:5060",
        ] {
            assert!(sip_uri("sip_uri", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "http://example.com",
            "sip:",
            "sip:@host",
            "sip:a@",
            "sip:a@host:0",
            "sip:a@host:99999",
            "sip:a b@host",
            "sip:a@ho_st",
            "sip:a@[nope]",
            "tel:+33123456789",
        ] {
            assert!(sip_uri("sip_uri", bad).is_err(), "{bad}");
        }
    }
}
