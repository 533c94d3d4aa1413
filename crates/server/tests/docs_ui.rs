//! The API docs in the browser (`/docs`, Swagger UI) against the real server: the page and
//! everything it loads come from the server itself (nothing from another origin, so they work
//! offline), with the right content types; the UI is pointed at `/api/v1/openapi.json`; and
//! the document declares both auth schemes "Authorize" offers.

mod support;

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use serde_json::Value;
use support::TestApp;

/// The values of `attr="…"` on the tags named `tag` in `html` (enough for Swagger UI's page:
/// a handful of `<link>` and `<script>` tags with double-quoted attributes).
fn attrs(html: &str, tag: &str, attr: &str) -> Vec<String> {
    let open = format!("<{tag}");
    let key = format!("{attr}=\"");
    let mut out = Vec::new();
    for piece in html.split(&open).skip(1) {
        let head = &piece[..piece.find('>').unwrap_or(piece.len())];
        if let Some(i) = head.find(&key) {
            let rest = &head[i + key.len()..];
            out.push(rest[..rest.find('"').expect("closing quote")].to_owned());
        }
    }
    out
}

/// `reference` resolved against the page at `page` (`http://host:port/docs/`): same-origin
/// references become absolute URLs; a reference to another origin is `Err`.
fn resolve(app: &TestApp, page: &str, reference: &str) -> Result<String, String> {
    if let Some(rest) = reference.strip_prefix("//") {
        return match rest.strip_prefix(&app.addr.to_string()) {
            Some(path) => Ok(app.url(path)),
            None => Err(reference.to_owned()),
        };
    }
    if reference.starts_with("http://") || reference.starts_with("https://") {
        return if reference.starts_with(&format!("{}/", app.base)) {
            Ok(reference.to_owned())
        } else {
            Err(reference.to_owned())
        };
    }
    if reference.contains(':') && !reference.starts_with('.') && !reference.starts_with('/') {
        // data:, javascript:, another scheme: not a file of ours.
        return Err(reference.to_owned());
    }
    if reference.starts_with('/') {
        return Ok(app.url(reference));
    }
    let dir = &page[..page.rfind('/').expect("a page URL has a /") + 1];
    Ok(format!(
        "{dir}{}",
        reference.strip_prefix("./").unwrap_or(reference)
    ))
}

#[tokio::test]
async fn docs_serves_swagger_ui_from_the_binary_pointed_at_the_openapi_document() {
    let app = TestApp::spawn().await;

    // `/docs` redirects to `/docs/` (a redirect is followed like a browser would).
    let no_follow = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let r = no_follow.get(app.url("/docs")).send().await.unwrap();
    assert!(r.status().is_redirection(), "GET /docs: {}", r.status());
    assert_eq!(r.headers()[LOCATION], "/docs/");

    let r = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.url().to_string();
    assert_eq!(page, app.url("/docs/"));
    let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    assert_eq!(r.headers()[CACHE_CONTROL], "no-cache");
    let html = r.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");

    // Every script and stylesheet is ours: relative or same-origin, and served with a
    // JavaScript or CSS type.
    let scripts = attrs(&html, "script", "src");
    let links = attrs(&html, "link", "href");
    assert!(
        scripts.len() >= 2,
        "bundle, preset and initializer expected: {scripts:?}"
    );
    assert!(
        links.iter().any(|l| l.ends_with(".css")),
        "a stylesheet: {links:?}"
    );
    let mut initializer = None;
    for (reference, kind) in scripts
        .iter()
        .map(|s| (s, "js"))
        .chain(links.iter().map(|l| (l, "link")))
    {
        let url = resolve(&app, &page, reference)
            .unwrap_or_else(|r| panic!("the docs page loads {r} from another origin"));
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        let expected: &[&str] = if kind == "js" || url.ends_with(".js") {
            &["text/javascript", "application/javascript"]
        } else if url.ends_with(".css") {
            &["text/css"]
        } else {
            // An icon.
            &["image/"]
        };
        assert!(
            expected.iter().any(|e| ct.starts_with(e)),
            "{url}: {ct}, expected one of {expected:?}"
        );
        let cache = r.headers()[CACHE_CONTROL].to_str().unwrap().to_owned();
        let body = r.text().await.unwrap();
        assert!(!body.is_empty(), "{url}");
        if url.ends_with("/swagger-initializer.js") {
            assert_eq!(cache, "no-cache", "{url}");
            initializer = Some(body);
        } else {
            assert!(cache.contains("max-age="), "{url}: {cache}");
        }
    }

    // The initializer points the UI at the document the server serves.
    let initializer = initializer.expect("the page loads swagger-initializer.js");
    assert!(
        initializer.contains("\"/api/v1/openapi.json\""),
        "{initializer}"
    );
    assert!(
        !initializer.contains("petstore"),
        "the demo URL is replaced: {initializer}"
    );
    // No badge from validator.swagger.io: nothing leaves for another host.
    assert!(
        initializer.contains("\"validatorUrl\": \"none\""),
        "{initializer}"
    );

    // A file the UI does not have: the API's 404 problem+json.
    let r = app
        .client
        .get(app.url("/docs/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/problem+json");

    app.stop().await;
}

#[tokio::test]
async fn the_document_declares_the_api_key_and_bearer_schemes() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key", "{schemes}");
    assert_eq!(schemes["bearer"]["type"], "http", "{schemes}");
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT", "{schemes}");
    app.stop().await;
}
