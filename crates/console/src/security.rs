//! Who may use the console, and which requests may change anything.
//!
//! - **Loopback by default.** Bound to a loopback address the console needs no token, but
//!   answers only requests whose `Host` is a loopback name with its port: a web page on another
//!   site that rebinds its DNS name to 127.0.0.1 cannot read or drive it.
//! - **A token elsewhere.** Bound to any other address it requires a token (random, printed at
//!   start): `Authorization: Bearer <token>`, or the cookie that opening `/?token=<token>` sets
//!   (HttpOnly, SameSite=Strict).
//! - **CSRF.** Only POST changes anything, and a POST must carry `X-Sluice-CSRF` with this
//!   server's CSRF token (in every page, and from `GET /api/session`), and must not come from
//!   another site (`Origin` other than the console's own, or `Sec-Fetch-Site: cross-site` /
//!   `same-site`). A form on another site can set neither the header nor the origin.
//! - Every answer says `nosniff`, may not be framed, keeps the URL (with a token) out of
//!   `Referer`, and allows scripts and styles only from the console itself.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// The header a state-changing request carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-sluice-csrf";
/// The cookie the token login sets.
pub const TOKEN_COOKIE: &str = "sluice_token";

/// The rules for one running console.
#[derive(Debug, Clone)]
pub struct Access {
    /// Required on every request when set.
    pub token: Option<String>,
    /// What `X-Sluice-CSRF` must be on a POST.
    pub csrf: String,
    /// Bound to loopback: the port every `Host` must name (with a loopback host name).
    pub loopback_port: Option<u16>,
}

impl Access {
    /// The rules for a console bound to `addr`: a token is required off loopback (`token`, or
    /// a new random one).
    pub fn for_addr(addr: SocketAddr, token: Option<String>) -> Self {
        let loopback = addr.ip().is_loopback();
        Self {
            token: match token {
                Some(t) => Some(t),
                None if loopback => None,
                None => Some(random_token()),
            },
            csrf: random_token(),
            loopback_port: loopback.then_some(addr.port()),
        }
    }
}

/// 32 random bytes, hex: a token nobody can guess.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Equal without an early exit, so response time says nothing about how much of a guess was
/// right.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn header(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `host[:port]` → (host, port), for a Host header or an Origin's authority.
fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        // [::1]:8080
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (authority, None),
    }
}

fn loopback_name(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_host(access: &Access, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(port) = access.loopback_port else {
        return Ok(());
    };
    // Browsers always send Host; a client that sends none is not a web page.
    let Some(host) = header(headers, header::HOST) else {
        return Ok(());
    };
    let (name, p) = split_authority(host);
    if loopback_name(name) && p.unwrap_or(80) == port {
        Ok(())
    } else {
        Err(ApiError::MisdirectedRequest(format!(
            "this console answers only on localhost:{port} (Host was '{}')",
            host.chars().take(100).collect::<String>()
        )))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    header(headers, header::AUTHORIZATION).and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    })
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v.to_string())
}

/// A POST must come from the console's own pages (or a script that read the CSRF token).
fn check_csrf(access: &Access, headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(site) = header(headers, "sec-fetch-site")
        && (site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"))
    {
        return Err(ApiError::Forbidden(format!(
            "cross-site request refused (Sec-Fetch-Site: {site})"
        )));
    }
    if let Some(origin) = header(headers, header::ORIGIN) {
        let own = header(headers, header::HOST).unwrap_or_default();
        let authority = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .unwrap_or(origin);
        if origin == "null" || !authority.eq_ignore_ascii_case(own) {
            return Err(ApiError::Forbidden(format!(
                "cross-origin request refused (Origin: {})",
                origin.chars().take(100).collect::<String>()
            )));
        }
    }
    match header(headers, CSRF_HEADER) {
        Some(t) if same(t, &access.csrf) => Ok(()),
        Some(_) => Err(ApiError::Forbidden(
            "wrong X-Sluice-CSRF token (reload the page, or read it from GET /api/session)".into(),
        )),
        None => Err(ApiError::Forbidden(
            "a state-changing request needs the X-Sluice-CSRF header (its value is in GET /api/session)".into(),
        )),
    }
}

/// The HTML answer to a browser that opened a page without the token.
fn login_page() -> Response {
    let body = "<!doctype html><meta charset=utf-8><title>sluice console: token needed</title>\
        <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\">\
        <h1>This console needs its token</h1>\
        <p>It is bound to a network address, so it asks for the token it printed when it \
        started. Open the address it printed (<code>http://HOST:PORT/?token=…</code>) once; \
        a cookie then keeps you signed in. Scripts send <code>Authorization: Bearer TOKEN</code>.</p>";
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The guard in front of every route; its refusals get the same headers as any answer.
pub async fn guard(State(access): State<Arc<Access>>, req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let mut response = match refusal(&access, &req, api) {
        None => next.run(req).await,
        Some(refusal) => refusal,
    };
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    if api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The answer to send instead of going on to the route, if the request is refused.
fn refusal(access: &Access, req: &Request, api: bool) -> Option<Response> {
    let headers = req.headers();
    if let Err(e) = check_host(access, headers) {
        return Some(e.into_response());
    }
    if let Some(token) = &access.token {
        let offered = query_token(req.uri().query());
        if let Some(offered) = offered.filter(|_| req.method() == Method::GET) {
            if !same(&offered, token) {
                return Some(ApiError::Unauthorized("wrong token".into()).into_response());
            }
            // Log in: keep the token in a cookie and drop it from the address bar (and so
            // from history and bookmarks).
            let cookie = format!("{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            // Back to the same page of this console; `//host` would be another site.
            let path = req.uri().path();
            let back = if path.starts_with("//") || path.starts_with("/\\") {
                "/"
            } else {
                path
            };
            let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            return Some(response);
        }
        let ok = bearer(headers)
            .or_else(|| cookie(headers, TOKEN_COOKIE))
            .is_some_and(|t| same(t, token));
        if !ok {
            return Some(if api {
                ApiError::Unauthorized(
                    "this console needs its token: send Authorization: Bearer TOKEN (printed when the console started)".into(),
                )
                .into_response()
            } else {
                login_page()
            });
        }
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Err(e) = check_csrf(access, headers)
    {
        return Some(e.into_response());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_required_off_loopback_only() {
        let local = Access::for_addr("127.0.0.1:8080".parse().unwrap(), None);
        assert!(local.token.is_none() && local.loopback_port == Some(8080));
        let open = Access::for_addr("0.0.0.0:8080".parse().unwrap(), None);
        assert_eq!(open.token.as_deref().map(str::len), Some(64));
        assert!(open.loopback_port.is_none());
        assert_ne!(open.csrf, local.csrf);
    }

    #[test]
    fn hosts_and_authorities() {
        assert_eq!(split_authority("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_authority("localhost"), ("localhost", None));
        assert!(loopback_name("127.0.0.2") && loopback_name("LOCALHOST"));
        assert!(!loopback_name("evil.example"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
