//! A strict SigV4 check for the sink, the way AMP applies it: the signature is recomputed here
//! (independently of aws-sigv4), the credential scope must name the workspace's region, the
//! access key must be known and unexpired by the server's clock, and `x-amz-date` must be within
//! five minutes of that clock. Failures answer 403 with AMP's JSON bodies.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Largest accepted difference between `x-amz-date` and the server clock.
pub const MAX_SKEW: Duration = Duration::from_secs(300);

/// What the server accepts.
#[derive(Debug, Clone)]
pub struct StrictAuth {
    pub region: String,
    pub service: String,
    /// Access key, secret, and the server time after which the key is expired.
    pub keys: Vec<(String, String, Option<SystemTime>)>,
    /// Server clock minus the real clock, in seconds (positive: the server is ahead).
    pub clock_offset_secs: i64,
}

impl StrictAuth {
    pub fn new(region: &str, access: &str, secret: &str) -> StrictAuth {
        StrictAuth {
            region: region.into(),
            service: "aps".into(),
            keys: vec![(access.into(), secret.into(), None)],
            clock_offset_secs: 0,
        }
    }

    /// The server's idea of now.
    pub fn now(&self) -> SystemTime {
        let real = SystemTime::now();
        if self.clock_offset_secs >= 0 {
            real + Duration::from_secs(self.clock_offset_secs as u64)
        } else {
            real - Duration::from_secs(self.clock_offset_secs.unsigned_abs())
        }
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn deny(msg: &str) -> (u16, String) {
    (403, format!("{{\"message\":\"{msg}\"}}"))
}

/// `YYYYMMDDTHHMMSSZ` to a time.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// A time as `YYYYMMDDTHHMMSSZ`.
pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Checks a request; returns the access key used, or the 403 to answer.
pub fn verify(auth: &StrictAuth, parts: &hyper::http::request::Parts, body: &[u8]) -> Result<String, (u16, String)> {
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let Some(a) = header("authorization") else {
        return Err(deny("Missing Authentication Token"));
    };
    let rest = a
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| deny("Authorization header requires AWS4-HMAC-SHA256"))?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let (Some(cred), Some(signed), Some(sig)) = (cred, signed, sig) else {
        return Err(deny(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'",
        ));
    };
    let scope: Vec<&str> = cred.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err(deny("Credential is malformed"));
    }
    let (key, date, region, service) = (scope[0], scope[1], scope[2], scope[3]);
    if region != auth.region {
        return Err(deny("Credential should be scoped to a valid region. "));
    }
    if service != auth.service {
        return Err(deny(&format!(
            "Credential should be scoped to correct service: '{}'. ",
            auth.service
        )));
    }
    let Some((_, secret, valid_until)) = auth.keys.iter().find(|(k, _, _)| k == key) else {
        return Err(deny("The security token included in the request is invalid."));
    };
    let now = auth.now();
    if valid_until.is_some_and(|u| now > u) {
        return Err(deny("The security token included in the request is expired"));
    }
    let amz_date = header("x-amz-date").ok_or_else(|| deny("Missing x-amz-date"))?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| deny("Invalid x-amz-date"))?;
    if !amz_date.starts_with(date) {
        return Err(deny("Date in Credential scope does not match x-amz-date"));
    }
    if signed_at + MAX_SKEW < now {
        return Err(deny(&format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
            format_amz_date(now - MAX_SKEW),
            format_amz_date(now)
        )));
    }
    if signed_at > now + MAX_SKEW {
        return Err(deny(&format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
            format_amz_date(now + MAX_SKEW),
            format_amz_date(now)
        )));
    }
    let names: Vec<&str> = signed.split(';').collect();
    for required in ["host", "x-amz-date", "content-type", "content-encoding"] {
        if !names.contains(&required) {
            return Err(deny(&format!("{required} must be signed")));
        }
    }
    let mut canonical_headers = String::new();
    for n in &names {
        let v = header(n).ok_or_else(|| deny(&format!("signed header {n} missing")))?;
        canonical_headers.push_str(&format!("{n}:{}\n", v.trim()));
    }
    let canonical = format!(
        "POST\n{}\n{}\n{}\n{}\n{}",
        parts.uri.path(),
        parts.uri.query().unwrap_or(""),
        canonical_headers,
        signed,
        hex(&Sha256::digest(body))
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    if hex(&hmac(&k, to_sign.as_bytes())) != sig {
        return Err(deny(
            "The request signature we calculated does not match the signature you provided.",
        ));
    }
    Ok(key.to_owned())
}

#[test]
fn amz_dates_round_trip() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(format_amz_date(t), "20231114T221320Z");
    assert_eq!(parse_amz_date("20231114T221320Z"), Some(t));
}
