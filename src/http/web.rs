//! The embedded web client: the files of `src/web/` (plain HTML, CSS and ES modules, no build
//! step) compiled into the binary and served at `/` and `/<file>`, with their content types, an
//! ETag from the file's hash and headers that keep the page from being framed or sniffed. In
//! debug builds rust-embed reads the folder at run time, so edits show without a rebuild. This
//! module only serves bytes; the client's behaviour lives in the JavaScript.

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "src/web/"]
struct WebAssets;

/// Content security policy of the client: its own scripts and styles only, WebSocket signaling
/// to this origin (ws/wss), media from the page's own streams.
const CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
                   media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The content type of a served file, by extension (UTF-8 for the text ones).
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json" | "webmanifest") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// `GET /` and every other path the router does not know: an embedded file, or 404.
pub(super) async fn asset(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
        )
            .into_response();
    }
    let path = match uri.path().trim_start_matches('/') {
        "" => "index.html",
        path => path,
    };
    let hidden = path
        .split('/')
        .any(|part| part.is_empty() || part.starts_with('.'));
    let Some(file) = WebAssets::get(path).filter(|_| !hidden) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let etag = etag(&file.metadata.sha256_hash());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    // For HEAD the server sends the headers (length included) and drops the body.
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.data.into_owned().into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    response
}

fn etag(hash: &[u8; 32]) -> String {
    let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_files_are_embedded() {
        for file in ["index.html", "app.js", "style.css"] {
            assert!(WebAssets::get(file).is_some(), "{file} is not embedded");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("icon.svg"), "image/svg+xml");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }

    #[test]
    fn every_module_an_embedded_file_imports_is_embedded_too() {
        for path in WebAssets::iter() {
            if !path.ends_with(".js") {
                continue;
            }
            let Some(file) = WebAssets::get(&path) else {
                continue;
            };
            let text = String::from_utf8_lossy(&file.data);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(spec) = line.split(['\'', '"']).nth(1) else {
                    continue;
                };
                let target = spec.trim_start_matches("./");
                assert!(
                    WebAssets::get(target).is_some(),
                    "{path} imports {spec}, which is not embedded"
                );
            }
        }
    }
}
