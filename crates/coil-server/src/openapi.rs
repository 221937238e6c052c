//! The OpenAPI 3.1 document of each process, composed from the documents the route modules
//! generate from their own handlers (`http.rs`, `matchmaker.rs`, `web.rs`, `coil_api::routes`),
//! and served at `GET /api/openapi.json` with a small page at `GET /api/docs` that lists the
//! operations (rendered here, so it needs no script, no CDN and passes a strict CSP).
//!
//! A process documents exactly the routes it mounts: `coil serve` its node routes, the
//! matchmaker's and the accounts API; `coil matchmaker` its own. `tests/openapi.rs` holds the
//! routers to the documents. This module never describes a route by hand that a handler could
//! describe itself, and knows nothing of what the routes do.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::OpenApi as Document;

/// The two routes of this module.
#[derive(OpenApi)]
#[openapi(
    paths(openapi_json, docs_page),
    tags((name = "meta", description = "This document and its page."))
)]
struct MetaApi;

/// The title, version and common parts every Coil document gets.
fn finish(mut document: Document, title: &str, description: &str) -> Document {
    document.merge(MetaApi::openapi());
    document.info = utoipa::openapi::InfoBuilder::new()
        .title(title)
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(description))
        .license(Some(
            utoipa::openapi::LicenseBuilder::new()
                .name("Apache-2.0")
                .identifier(Some("Apache-2.0"))
                .build(),
        ))
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    if !components.schemas.contains_key("Error") {
        // Every document answers errors in this shape, if only from the fallback's 404.
        let (name, schema) = (
            "Error".to_string(),
            <coil_api::openapi::ErrorBody as utoipa::PartialSchema>::schema(),
        );
        components.schemas.insert(name, schema);
    }
    for (name, schema) in [
        (
            "ErrorDetail",
            <coil_api::openapi::ErrorDetail as utoipa::PartialSchema>::schema(),
        ),
        (
            "ErrorCode",
            <coil_api::openapi::ErrorCode as utoipa::PartialSchema>::schema(),
        ),
    ] {
        components.schemas.entry(name.to_string()).or_insert(schema);
    }
    utoipa::Modify::modify(&coil_api::openapi::SecuritySchemes, &mut document);
    coil_api::openapi::add_common_responses(&mut document, false);
    document
}

/// The document of a node ([`crate::run`]): its own routes for `config`, the browser client,
/// `extra` (the documents of `NodeServices::extra_routes`, the all-in-one matchmaker) and the
/// accounts API when the node mounts it.
pub fn node_document(
    config: &crate::NodeConfig,
    extra: Option<Document>,
    accounts: bool,
) -> Document {
    let mut document = crate::http::openapi(config);
    document.merge(crate::web::openapi());
    if let Some(extra) = extra {
        document.merge(extra);
    }
    if accounts {
        document.merge(coil_api::routes::openapi());
    }
    finish(
        document,
        "Coil game node",
        "A Coil node's HTTP API: health, readiness, metrics, leaderboard, the room WebSocket \
         upgrade (its binary protocol is docs/protocol.md) and, in the all-in-one shape, the \
         matchmaker and accounts routes. Errors are {\"error\":{\"code\",\"message\"}} with \
         stable codes.",
    )
}

/// The document of `coil matchmaker` ([`crate::run_matchmaker_with_accounts`]).
pub fn matchmaker_document(
    settings: &crate::matchmaker::MatchmakerSettings,
    accounts: bool,
) -> Document {
    let mut document = crate::matchmaker::openapi(settings);
    document.merge(crate::matchmaker::service_openapi());
    if accounts {
        document.merge(coil_api::routes::openapi());
    }
    finish(
        document,
        "Coil matchmaker",
        "The matchmaker's HTTP API: placement and join tokens, node heartbeats and, with \
         accounts, the accounts routes. Errors are {\"error\":{\"code\",\"message\"}} with \
         stable codes.",
    )
}

/// What the two routes serve, rendered once.
struct Rendered {
    json: String,
    html: String,
}

/// `GET /api/openapi.json` and `GET /api/docs` for `document`.
pub fn routes(document: &Document) -> Router {
    let json = document
        .to_pretty_json()
        .expect("an OpenAPI document always serializes");
    let value: Value = serde_json::from_str(&json).expect("the document is JSON");
    let rendered = Arc::new(Rendered {
        html: docs_html(&value),
        json,
    });
    Router::new()
        .route("/api/openapi.json", get(openapi_json))
        .route("/api/docs", get(docs_page))
        .with_state(rendered)
}

/// This process's OpenAPI 3.1 document: every route it serves.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The document.", content_type = "application/json", body = Object)))]
async fn openapi_json(State(rendered): State<Arc<Rendered>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        rendered.json.clone(),
    )
        .into_response()
}

/// The document as a page: every operation with its parameters and answers.
#[utoipa::path(get, path = "/api/docs", tag = "meta",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String)))]
async fn docs_page(State(rendered): State<Arc<Rendered>>) -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        rendered.html.clone(),
    )
        .into_response();
    // The page is plain HTML: nothing to load, run or frame.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `#/components/schemas/X` → `X`, or the inline schema's type.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(other) => other.to_string(),
        None => "any".into(),
    }
}

/// The page: a table of contents, then each operation; the schemas as JSON at the end.
fn docs_html(document: &Value) -> String {
    let info = &document["info"];
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — HTTP API</title></head><body>\n<h1>{title} {version}</h1>\n\
         <p>{description}</p>\n<p>The machine-readable document: \
         <a href=\"/api/openapi.json\">/api/openapi.json</a> (OpenAPI {openapi}).</p>\n",
        title = escape(text(info, "title")),
        version = escape(text(info, "version")),
        description = escape(text(info, "description")),
        openapi = escape(text(document, "openapi")),
    );
    let empty = serde_json::Map::new();
    let paths = document["paths"].as_object().unwrap_or(&empty);
    html.push_str("<h2>Operations</h2>\n<ul>\n");
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap_or(&empty) {
            let _ = writeln!(
                html,
                "<li><a href=\"#{anchor}\"><code>{method} {path}</code></a> — {summary}</li>",
                anchor = escape(&format!("{method}-{path}")),
                method = escape(&method.to_uppercase()),
                path = escape(path),
                summary = escape(text(operation, "summary")),
            );
        }
    }
    html.push_str("</ul>\n");
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap_or(&empty) {
            let _ = writeln!(
                html,
                "<h3 id=\"{anchor}\"><code>{method} {path}</code></h3>\n<p>{summary}</p>\n<p>{description}</p>",
                anchor = escape(&format!("{method}-{path}")),
                method = escape(&method.to_uppercase()),
                path = escape(path),
                summary = escape(text(operation, "summary")),
                description = escape(text(operation, "description")),
            );
            if let Some(security) = operation.get("security").and_then(Value::as_array) {
                let schemes: Vec<String> = security
                    .iter()
                    .map(|requirement| match requirement.as_object() {
                        Some(map) if !map.is_empty() => {
                            map.keys().cloned().collect::<Vec<_>>().join(" + ")
                        }
                        _ => "none".into(),
                    })
                    .collect();
                let _ = writeln!(
                    html,
                    "<p>Authorization: {}</p>",
                    escape(&schemes.join(" or "))
                );
            }
            if let Some(parameters) = operation.get("parameters").and_then(Value::as_array) {
                html.push_str("<p>Parameters:</p><ul>\n");
                for parameter in parameters {
                    let _ = writeln!(
                        html,
                        "<li><code>{name}</code> in {location}{required}: {description}</li>",
                        name = escape(text(parameter, "name")),
                        location = escape(text(parameter, "in")),
                        required = if parameter["required"] == Value::Bool(true) {
                            ", required"
                        } else {
                            ""
                        },
                        description = escape(text(parameter, "description")),
                    );
                }
                html.push_str("</ul>\n");
            }
            if let Some(content) = operation
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
            {
                for (media, body) in content {
                    let _ = writeln!(
                        html,
                        "<p>Body: <code>{media}</code> <a href=\"#schema-{name}\">{name}</a></p>",
                        media = escape(media),
                        name = escape(&schema_name(&body["schema"])),
                    );
                }
            }
            html.push_str("<table><tr><th>status</th><th>body</th><th>meaning</th></tr>\n");
            for (status, response) in operation["responses"].as_object().unwrap_or(&empty) {
                let bodies: Vec<String> = response
                    .get("content")
                    .and_then(Value::as_object)
                    .map(|content| {
                        content
                            .iter()
                            .map(|(media, body)| {
                                format!("{media} {}", schema_name(&body["schema"]))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let headers = response
                    .get("headers")
                    .and_then(Value::as_object)
                    .map(|headers| {
                        let names: Vec<&str> = headers.keys().map(String::as_str).collect();
                        format!(" (headers: {})", names.join(", "))
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    html,
                    "<tr><td>{status}</td><td><code>{bodies}</code></td><td>{description}{headers}</td></tr>",
                    status = escape(status),
                    bodies = escape(&bodies.join(", ")),
                    description = escape(text(response, "description")),
                    headers = escape(&headers),
                );
            }
            html.push_str("</table>\n");
        }
    }
    html.push_str("<h2>Schemas</h2>\n");
    if let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            let _ = writeln!(
                html,
                "<h3 id=\"schema-{name}\">{name}</h3>\n<pre>{json}</pre>",
                name = escape(name),
                json = escape(&serde_json::to_string_pretty(schema).unwrap_or_default()),
            );
        }
    }
    html.push_str("</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_escapes_what_the_document_says() {
        let document = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "<script>", "version": "1"},
            "paths": {"/a": {"get": {"summary": "x & y", "responses": {"200": {"description": "<b>"}}}}},
        });
        let html = docs_html(&document);
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("x &amp; y"));
        assert!(html.contains("&lt;b&gt;"));
        assert!(!html.contains("<script"));
    }
}
