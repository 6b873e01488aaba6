//! The dashboard's page, script and style, built into the binary (no
//! build step, nothing fetched from elsewhere).
pub struct Asset {
    pub content_type: &'static str,
    pub body: &'static str,
}

const INDEX: Asset = Asset { content_type: "text/html; charset=utf-8", body: include_str!("assets/index.html") };
const SCRIPT: Asset =
    Asset { content_type: "text/javascript; charset=utf-8", body: include_str!("assets/dashboard.js") };
const STYLE: Asset = Asset { content_type: "text/css; charset=utf-8", body: include_str!("assets/dashboard.css") };

/// The asset served at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    match path {
        "/" => Some(&INDEX),
        "/dashboard.js" => Some(&SCRIPT),
        "/dashboard.css" => Some(&STYLE),
        _ => None,
    }
}
