//! The browser client, embedded in the binary: `GET /` serves `web/index.html`, and the page's
//! stylesheet and JavaScript modules are served from the same table, so running Coil needs no
//! Node.js, no build step and no files beside the binary.
//!
//! Owns only the static files of `web/` (everything except `web/test/`) and how they are
//! served: content types, an `ETag` per file, `Cache-Control: no-cache` (the file names carry
//! no version, so browsers revalidate and a new binary is picked up at once) and a strict
//! Content-Security-Policy. It never reads the file system at run time and knows nothing about
//! games, rooms or the API the page calls.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file: its path under `web/`, its bytes and its content type.
struct WebFile {
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

macro_rules! web_file {
    ($path:literal, $content_type:expr) => {
        WebFile {
            path: $path,
            body: include_str!(concat!("../../../web/", $path)),
            content_type: $content_type,
        }
    };
}

/// Every file the page loads. A unit test fails when a file under `web/` (outside `web/test/`)
/// is missing here, so a new module cannot be forgotten.
const FILES: &[WebFile] = &[
    web_file!("index.html", HTML),
    web_file!("style.css", CSS),
    web_file!("src/main.js", JAVASCRIPT),
    web_file!("src/protocol.js", JAVASCRIPT),
    web_file!("src/mirror.js", JAVASCRIPT),
    web_file!("src/net.js", JAVASCRIPT),
    web_file!("src/render.js", JAVASCRIPT),
    web_file!("src/ui.js", JAVASCRIPT),
    web_file!("src/account.js", JAVASCRIPT),
    web_file!("src/lobbies.js", JAVASCRIPT),
    // Breach's client (web/src/breach/, docs/web-client.md).
    web_file!("src/breach/breach.css", CSS),
    web_file!("src/breach/game.js", JAVASCRIPT),
    web_file!("src/breach/input.js", JAVASCRIPT),
    web_file!("src/breach/interpolate.js", JAVASCRIPT),
    web_file!("src/breach/lobby.js", JAVASCRIPT),
    web_file!("src/breach/map.js", JAVASCRIPT),
    web_file!("src/breach/maps.js", JAVASCRIPT),
    web_file!("src/breach/mirror.js", JAVASCRIPT),
    web_file!("src/breach/net.js", JAVASCRIPT),
    web_file!("src/breach/predict.js", JAVASCRIPT),
    web_file!("src/breach/protocol.js", JAVASCRIPT),
    web_file!("src/breach/render.js", JAVASCRIPT),
    web_file!("src/breach/screens.js", JAVASCRIPT),
    web_file!("src/breach/sound.js", JAVASCRIPT),
];

/// The page talks to its own origin over HTTP and to game nodes over WebSockets (which may be
/// other hosts in a fleet); nothing else is loaded or framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Routes for the page and its assets; merge them into the node's router.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(index_page))
        .route("/index.html", get(index_file))
        .route("/style.css", get(stylesheet))
        .route("/src/{file}", get(script))
        .route("/src/breach/{file}", get(breach_asset))
}

/// The browser client's page.
#[utoipa::path(get, path = "/", tag = "web",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "Not modified (`If-None-Match` matched the `ETag`)."),
    ))]
async fn index_page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// The browser client's page, by its file name.
#[utoipa::path(get, path = "/index.html", tag = "web",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "Not modified."),
    ))]
async fn index_file(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// The page's stylesheet.
#[utoipa::path(get, path = "/style.css", tag = "web",
    responses(
        (status = 200, description = "The stylesheet.", content_type = "text/css", body = String),
        (status = 304, description = "Not modified."),
    ))]
async fn stylesheet(headers: HeaderMap) -> Response {
    serve("style.css", &headers)
}

/// One of the page's JavaScript modules.
#[utoipa::path(get, path = "/src/{file}", tag = "web",
    params(("file" = String, Path, example = "main.js", description = "A module's file name, e.g. `main.js`.")),
    responses(
        (status = 200, description = "The module.", content_type = "text/javascript", body = String),
        (status = 304, description = "Not modified."),
        (status = 404, description = "No such file.", content_type = "text/plain", body = String),
    ))]
async fn script(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("src/{file}"), &headers)
}

/// One of breach's modules or its stylesheet.
#[utoipa::path(get, path = "/src/breach/{file}", tag = "web",
    params(("file" = String, Path, example = "game.js", description = "A file name under `web/src/breach/`.")),
    responses(
        (status = 200, description = "The file (JavaScript or CSS).", content_type = "text/javascript", body = String),
        (status = 304, description = "Not modified."),
        (status = 404, description = "No such file.", content_type = "text/plain", body = String),
    ))]
async fn breach_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("src/breach/{file}"), &headers)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(index_page, index_file, stylesheet, script, breach_asset),
    tags((name = "web", description = "The embedded browser client (`web/`)."))
)]
struct WebApi;

/// The OpenAPI document of [`routes`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    <WebApi as utoipa::OpenApi>::openapi()
}

/// Total bytes of the embedded files, i.e. what a first visit downloads before compression.
pub fn page_transfer_bytes() -> usize {
    FILES.iter().map(|file| file.body.len()).sum()
}

/// `"<16 hex digits>"`: FNV-1a of the file, computed once per process.
fn etags() -> &'static [String] {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    ETAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|file| {
                let hash = file
                    .body
                    .bytes()
                    .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
                        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
                    });
                format!("\"{hash:016x}\"")
            })
            .collect()
    })
}

fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(index) = FILES.iter().position(|file| file.path == path) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let file = &FILES[index];
    let etag = &etags()[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, file.content_type)], file.body).into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if file.content_type == HTML {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use std::path::{Path as FsPath, PathBuf};

    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    fn web_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
    }

    fn list_files(dir: &FsPath, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("web/ is readable") {
            let entry = entry.expect("directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = format!("{prefix}{name}");
            if entry.file_type().expect("file type").is_dir() {
                // Tests, fixtures, the benchmark page and node_modules are not part of the page.
                if relative != "test" {
                    list_files(&entry.path(), &format!("{relative}/"), out);
                }
            } else {
                out.push(relative);
            }
        }
    }

    #[test]
    fn every_file_of_the_page_is_embedded() {
        let mut on_disk = Vec::new();
        list_files(&web_dir(), "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|file| file.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "web/ and the embedded table in crates/coil-server/src/web.rs differ"
        );
    }

    #[test]
    fn every_module_the_page_imports_is_embedded() {
        // `import ... from './x.js'` in any module, and `src="..."`/`href="..."` in the page.
        let embedded: Vec<&str> = FILES.iter().map(|file| file.path).collect();
        for file in FILES {
            let base = file.path.rsplit_once('/').map_or("", |(dir, _)| dir);
            for quoted in file.body.split(['\'', '"']).skip(1).step_by(2) {
                let target = if let Some(local) = quoted.strip_prefix("./") {
                    if base.is_empty() {
                        local.to_owned()
                    } else {
                        format!("{base}/{local}")
                    }
                } else if let Some(absolute) = quoted.strip_prefix('/') {
                    absolute.to_owned()
                } else {
                    continue;
                };
                if target.ends_with(".js") || target.ends_with(".css") {
                    assert!(
                        embedded.contains(&target.as_str()),
                        "{} refers to {target}, which is not embedded",
                        file.path
                    );
                }
            }
        }
    }

    async fn get(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        routes::<()>()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn files_are_served_with_types_and_revalidation() {
        let page = get("/", None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CONTENT_TYPE], HTML);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let etag = page.headers()[header::ETAG].to_str().unwrap().to_owned();
        let body = to_bytes(page.into_body(), 1 << 20).await.unwrap();
        assert_eq!(
            &body[..],
            include_str!("../../../web/index.html").as_bytes()
        );

        let again = get("/", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(to_bytes(again.into_body(), 1024).await.unwrap().is_empty());
        let stale = get("/", Some("\"0000000000000000\"")).await;
        assert_eq!(stale.status(), StatusCode::OK);

        let module = get("/src/protocol.js", None).await;
        assert_eq!(module.status(), StatusCode::OK);
        assert_eq!(module.headers()[header::CONTENT_TYPE], JAVASCRIPT);
        assert_ne!(module.headers()[header::ETAG], etag.as_str());
        let css = get("/style.css", None).await;
        assert_eq!(css.headers()[header::CONTENT_TYPE], CSS);

        for missing in ["/src/nope.js", "/src/..%2Fweb.rs", "/test/bench.html"] {
            assert_eq!(
                get(missing, None).await.status(),
                StatusCode::NOT_FOUND,
                "{missing}"
            );
        }
    }

    #[test]
    fn the_page_is_small() {
        // Not a speed target, a guard against embedding something by mistake (a fixture, a
        // bundled library, both megabytes): the client — arena, breach with its lobby, the
        // lobby browser — is ~270 KB of unminified source (2026-12-04).
        assert!(
            page_transfer_bytes() < 384 * 1024,
            "{}",
            page_transfer_bytes()
        );
    }
}
