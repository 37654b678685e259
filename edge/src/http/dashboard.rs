//! The account dashboard: one HTML page, one script and one stylesheet,
//! served by the component itself (so Spin serves it too). The page calls
//! the API with the key pasted into it, or with the session a dashboard
//! link opens (`POST /dashboard/sessions`, [`crate::http::orgs`]).

use sha2::{Digest, Sha256};

use crate::foundation::encoding::hex;
use crate::platform::Response;

const PAGE: &str = include_str!("../../dashboard/index.html");
const SCRIPT: &str = include_str!("../../dashboard/app.js");
const STYLE: &str = include_str!("../../dashboard/app.css");

/// No inline script or style, nothing from elsewhere, no framing: the page
/// holds an API key.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// A dashboard file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asset {
    /// `/`: a redirect to the page.
    Home,
    /// `/dashboard`.
    Page,
    /// `/dashboard/app.js`.
    Script,
    /// `/dashboard/app.css`.
    Style,
}

/// The first 16 hex digits of the SHA-256 of the script and stylesheet:
/// the page asks for them by it, so a cached copy is never a stale one.
fn version() -> String {
    let digest = Sha256::new()
        .chain_update(SCRIPT)
        .chain_update(STYLE)
        .finalize();
    hex(&digest[..8])
}

/// Serves a dashboard file; `query` is the request's query string.
pub fn serve(asset: Asset, query: Option<&str>) -> Response {
    let version = version();
    let (content_type, body, cache) = match asset {
        Asset::Home => {
            return Response::new(
                302,
                vec![("location".into(), "/dashboard".into())],
                Vec::new(),
            );
        }
        Asset::Page => (
            "text/html; charset=utf-8",
            PAGE.replace("{{version}}", &version),
            // Revalidated every time: it names the current files.
            "no-cache",
        ),
        Asset::Script | Asset::Style => {
            let body = if asset == Asset::Script {
                SCRIPT
            } else {
                STYLE
            };
            let content_type = if asset == Asset::Script {
                "text/javascript; charset=utf-8"
            } else {
                "text/css; charset=utf-8"
            };
            // Asked for by this very version: it can never change.
            let current = query == Some(format!("v={version}").as_str());
            let cache = if current {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (content_type, body.to_string(), cache)
        }
    };
    Response::new(
        200,
        vec![
            ("content-type".into(), content_type.into()),
            ("cache-control".into(), cache.into()),
            ("content-security-policy".into(), POLICY.into()),
            ("referrer-policy".into(), "no-referrer".into()),
        ],
        body.into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
        response
            .headers
            .iter()
            .find(|(found, _)| found == name)
            .map(|(_, value)| value.as_str())
    }

    #[test]
    fn the_page_names_the_current_files_and_they_are_cached_by_it() {
        let page = serve(Asset::Page, None);
        let html = String::from_utf8(page.body.clone()).unwrap_or_default();
        let version = version();
        assert!(html.contains(&format!("/dashboard/app.js?v={version}")));
        assert!(html.contains(&format!("/dashboard/app.css?v={version}")));
        assert!(!html.contains("{{"));
        assert_eq!(header(&page, "cache-control"), Some("no-cache"));
        let current = serve(Asset::Script, Some(&format!("v={version}")));
        assert_eq!(
            header(&current, "cache-control"),
            Some("public, max-age=31536000, immutable")
        );
        let stale = serve(Asset::Style, Some("v=0"));
        assert_eq!(header(&stale, "cache-control"), Some("no-cache"));
    }

    #[test]
    fn no_file_runs_or_loads_anything_inline_or_from_elsewhere() {
        let html = PAGE.to_ascii_lowercase();
        // Every script is a file of this origin; no inline handlers or styles.
        assert_eq!(html.matches("<script").count(), 1);
        assert!(html.contains("<script type=\"module\" src=\"/dashboard/app.js"));
        for inline in [
            " style=",
            " onclick=",
            " onload=",
            "javascript:",
            "=\"http",
            "=\"//",
        ] {
            assert!(!html.contains(inline), "{inline}");
        }
        // One script, no imports, no HTML parsing of data; no stylesheet imports.
        for unsafe_use in [
            "import ",
            "import(",
            "innerHTML",
            "outerHTML",
            "eval(",
            "new Function",
        ] {
            assert!(!SCRIPT.contains(unsafe_use), "{unsafe_use}");
        }
        assert!(!STYLE.contains("@import") && !STYLE.contains("url("));
        let page = serve(Asset::Page, None);
        let policy = header(&page, "content-security-policy").unwrap_or_default();
        assert!(policy.starts_with("default-src 'self'"));
        assert!(!policy.contains("unsafe"));
    }
}
