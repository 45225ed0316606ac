//! A small client of the OCI distribution API (registry HTTP API v2): manifests by tag or digest,
//! tag lists and blobs, each checked against its digest. Enough for verifying pushes and for the
//! release plan; pushing itself is buildah's job.
//!
//! Authentication follows the registry's `WWW-Authenticate` challenge: a Bearer token from its
//! token endpoint (Artifact Registry, Docker Hub, gcr.io), or Basic. Credentials, when needed, come
//! from `FINTECH_REGISTRY_USERNAME` and `FINTECH_REGISTRY_PASSWORD` (for Artifact Registry:
//! `oauth2accesstoken` and `gcloud auth print-access-token`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fintech_config::Secret;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::StatusCode;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, LINK, LOCATION, USER_AGENT, WWW_AUTHENTICATE};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

/// What we accept for a manifest: single-platform images and indexes, OCI and Docker.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
/// The distribution project's own limit on a manifest's size.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// An image configuration is a few KiB; anything this large is not one.
const MAX_BLOB_BYTES: usize = 8 * 1024 * 1024;
/// Tags per page asked for, and pages followed at most (100 000 tags per repository).
const TAGS_PAGE: u32 = 1000;
const MAX_TAG_PAGES: usize = 100;
/// Attempts of one GET on a connection error or a 5xx, with backoff and jitter in between.
const ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Redirects followed at most (registries send blob downloads to their storage).
const MAX_REDIRECTS: usize = 5;

/// A content digest: `sha256:` and 64 lowercase hex characters (the only form the chart takes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        match text.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) => {
                Ok(Digest(text.to_owned()))
            }
            _ => bail!("{text:?} is not a digest (sha256: and 64 lowercase hex characters)"),
        }
    }

    pub fn of(bytes: &[u8]) -> Self {
        let sum = Sha256::digest(bytes);
        Digest(format!("sha256:{}", sum.iter().map(|b| format!("{b:02x}")).collect::<String>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256:1234abcd5678` for tables.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(19)]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `host[:port]/path` split into the registry host and the path under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryPath {
    pub host: String,
    pub path: String,
}

impl RegistryPath {
    /// `europe-west1-docker.pkg.dev/fintech-shared/fintech-images` or `127.0.0.1:5000/fintech`.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let text = text.trim().trim_end_matches('/');
        let Some((host, path)) = text.split_once('/') else {
            bail!("registry {text:?} has no path: give host[:port]/path, e.g. 127.0.0.1:5000/fintech");
        };
        if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)) {
            bail!("registry {text:?}: {host:?} is not a host[:port]");
        }
        let valid_component = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
        };
        if !path.split('/').all(valid_component) {
            bail!("registry {text:?}: {path:?} is not a repository path (lowercase letters, digits, . _ - and /)");
        }
        Ok(RegistryPath { host: host.to_owned(), path: path.to_owned() })
    }

    /// The repository of `name` under this path: `fintech/contact-us`.
    pub fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// The full image name of `name`: `127.0.0.1:5000/fintech/contact-us`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{}", self.host, self.repository(name))
    }
}

/// An OCI or Docker manifest or index, the fields we read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub media_type: Option<String>,
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
}

/// A fetched manifest: its digest (checked against the bytes), and the parsed document.
#[derive(Debug)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub manifest: Manifest,
}

impl FetchedManifest {
    /// Config plus layers: what a pull downloads (compressed).
    pub fn compressed_size(&self) -> u64 {
        self.manifest.config.as_ref().map_or(0, |c| c.size) + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// The image configuration, the fields we check.
#[derive(Debug, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub config: RuntimeConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    token: Option<String>,
    access_token: Option<String>,
}

/// How the registry wants to be authenticated, from its 401 challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
    Basic,
}

impl Challenge {
    /// Parses `Bearer realm="https://…",service="…",scope="…"` or `Basic realm="…"`.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_auth_params(rest);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `k="v", k2=v2` → map; quoted values may hold commas.
fn parse_auth_params(text: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = next.trim_start().trim_start_matches(',');
    }
    params
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<bytes::Bytes>>;

/// An answer: status, headers and the whole body (bounded).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

/// A client of one registry host.
pub struct Registry {
    client: HttpsClient,
    base: String,
    host: String,
    credentials: Option<(String, Secret<String>)>,
    /// `Authorization` values by scope, once a challenge was answered.
    authorizations: Mutex<HashMap<String, String>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("base", &self.base).finish_non_exhaustive()
    }
}

impl Registry {
    /// `tls_verify = false` talks plain HTTP (a local test registry); otherwise HTTPS with the
    /// system's certificate authorities. Credentials are read from the environment.
    pub fn new(host: &str, tls_verify: bool) -> anyhow::Result<Self> {
        let credentials = match (std::env::var("FINTECH_REGISTRY_USERNAME"), std::env::var("FINTECH_REGISTRY_PASSWORD"))
        {
            (Ok(user), Ok(password)) if !user.is_empty() => Some((user, Secret::new(password))),
            _ => None,
        };
        Self::with_credentials(host, tls_verify, credentials)
    }

    pub fn with_credentials(
        host: &str,
        tls_verify: bool,
        credentials: Option<(String, Secret<String>)>,
    ) -> anyhow::Result<Self> {
        Ok(Registry {
            client: https_client(tls_verify)?,
            base: format!("{}://{host}", if tls_verify { "https" } else { "http" }),
            host: host.to_owned(),
            credentials,
            authorizations: Mutex::new(HashMap::new()),
        })
    }

    /// The manifest `reference` (tag or digest) of `repository`. The digest is computed from the
    /// bytes served and must equal the registry's `Docker-Content-Digest` (and the reference,
    /// when it is a digest): a mismatch is an error.
    pub async fn manifest(&self, repository: &str, reference: &str) -> anyhow::Result<FetchedManifest> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base);
        let what = format!("{}/{repository}:{reference}", self.host);
        let answer = self.get(&url, repository, Some(MANIFEST_ACCEPT), MAX_MANIFEST_BYTES).await?;
        let status = answer.status;
        if status == StatusCode::NOT_FOUND {
            bail!("{what}: no such manifest in the registry (was it pushed?)");
        }
        if !status.is_success() {
            bail!("{what}: the registry answered {status} to GET {url}");
        }
        let header = answer
            .headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(Digest::parse)
            .transpose()
            .with_context(|| format!("{what}: Docker-Content-Digest header"))?;
        let body = answer.body;
        let digest = Digest::of(&body);
        if let Some(header) = header
            && header != digest
        {
            bail!("{what}: the registry says the manifest is {header} but its bytes hash to {digest}");
        }
        if reference.starts_with("sha256:") && reference != digest.as_str() {
            bail!("{what}: asked for {reference}, got a manifest whose bytes hash to {digest}");
        }
        let manifest: Manifest =
            serde_json::from_slice(&body).with_context(|| format!("{what}: the manifest is not valid JSON"))?;
        Ok(FetchedManifest { digest, manifest })
    }

    /// The digest the registry serves for `repository:tag` (a HEAD would do; the GET checks
    /// the bytes too).
    pub async fn digest(&self, repository: &str, tag: &str) -> anyhow::Result<Digest> {
        Ok(self.manifest(repository, tag).await?.digest)
    }

    /// Every tag of `repository`; empty if the repository does not exist.
    pub async fn tags(&self, repository: &str) -> anyhow::Result<Vec<String>> {
        let mut url = format!("{}/v2/{repository}/tags/list?n={TAGS_PAGE}", self.base);
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let answer = self.get(&url, repository, None, MAX_MANIFEST_BYTES).await?;
            let status = answer.status;
            if status == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !status.is_success() {
                bail!("{}/{repository}: the registry answered {status} to GET {url}", self.host);
            }
            let next = next_link(&answer.headers);
            let page: TagList = serde_json::from_slice(&answer.body)
                .with_context(|| format!("{}/{repository}: the tag list is not valid JSON", self.host))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(path) if path.starts_with('/') => url = format!("{}{path}", self.base),
                Some(full) => url = full,
                None => return Ok(tags),
            }
        }
        bail!(
            "{}/{repository} has more than {} tags; not listing them all",
            self.host,
            TAGS_PAGE as usize * MAX_TAG_PAGES
        )
    }

    /// A blob (an image configuration), checked against its digest.
    pub async fn blob(&self, repository: &str, digest: &str) -> anyhow::Result<Vec<u8>> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base);
        let answer = self.get(&url, repository, None, MAX_BLOB_BYTES).await?;
        let status = answer.status;
        if !status.is_success() {
            bail!("{}/{repository}@{digest}: the registry answered {status} to GET {url}", self.host);
        }
        let body = answer.body;
        let actual = Digest::of(&body);
        if actual.as_str() != digest {
            bail!("{}/{repository}: blob {digest} hashes to {actual}", self.host);
        }
        Ok(body)
    }

    /// The configuration of an image manifest.
    pub async fn config(&self, repository: &str, manifest: &FetchedManifest) -> anyhow::Result<ImageConfig> {
        let Some(config) = &manifest.manifest.config else {
            bail!(
                "{}/{repository}@{}: this is an index ({}), not a single image",
                self.host,
                manifest.digest,
                manifest.manifest.media_type.as_deref().unwrap_or("no media type")
            );
        };
        let body = self.blob(repository, &config.digest).await?;
        serde_json::from_slice(&body).with_context(|| format!("{}/{repository}: the image configuration", self.host))
    }

    /// A GET with bounded retries (connection errors and 5xx), answering one 401 challenge.
    async fn get(&self, url: &str, repository: &str, accept: Option<&str>, limit: usize) -> anyhow::Result<Answer> {
        let scope = format!("repository:{repository}:pull");
        let mut challenged = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut headers = HeaderMap::new();
            if let Some(accept) = accept {
                headers.insert(ACCEPT, HeaderValue::from_str(accept)?);
            }
            if let Some(auth) = self.authorization(&scope) {
                let mut value = HeaderValue::from_str(&auth).context("registry credentials are not a valid header")?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            match self.fetch(url, headers, limit).await {
                Ok(a) if a.status == StatusCode::UNAUTHORIZED && !challenged => {
                    challenged = true;
                    let header = a.headers.get(WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()).unwrap_or_default();
                    self.answer_challenge(header, &scope).await?;
                    attempt -= 1;
                }
                Ok(a) if a.status == StatusCode::UNAUTHORIZED || a.status == StatusCode::FORBIDDEN => {
                    bail!(
                        "{}: {} to GET {url}: {}",
                        self.host,
                        a.status,
                        if self.credentials.is_some() {
                            "the credentials in FINTECH_REGISTRY_USERNAME/FINTECH_REGISTRY_PASSWORD were refused"
                        } else {
                            "set FINTECH_REGISTRY_USERNAME and FINTECH_REGISTRY_PASSWORD (Artifact Registry: \
                             oauth2accesstoken and `gcloud auth print-access-token`)"
                        }
                    );
                }
                Ok(a) if a.status.is_server_error() && attempt < ATTEMPTS => backoff(attempt).await,
                Ok(a) => return Ok(a),
                Err(e) if attempt < ATTEMPTS && e.retryable => backoff(attempt).await,
                Err(e) => {
                    return Err(e.error.context(format!(
                        "GET {url} (is the registry {} up{}?)",
                        self.host,
                        if self.base.starts_with("https") {
                            ", and does it speak HTTPS; --tls-verify=false for plain HTTP"
                        } else {
                            ""
                        }
                    )));
                }
            }
        }
    }

    /// One GET, following redirects (without the Authorization header when they leave the
    /// host), the whole exchange bounded by REQUEST_TIMEOUT and the body by `limit`.
    async fn fetch(&self, url: &str, mut headers: HeaderMap, limit: usize) -> Result<Answer, FetchError> {
        let mut current = url::Url::parse(url).map_err(|e| FetchError::fatal(anyhow::anyhow!("{url}: {e}")))?;
        let origin = current.host_str().map(str::to_owned);
        for _ in 0..=MAX_REDIRECTS {
            let mut request = hyper::Request::get(current.as_str());
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            let request = request
                .header(USER_AGENT, concat!("fintech/", env!("CARGO_PKG_VERSION")))
                .body(Empty::new())
                .map_err(|e| FetchError::fatal(e.into()))?;
            let exchange = async {
                let response = self.client.request(request).await.map_err(FetchError::transport)?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, limit).collect().await.map_err(|e| {
                    FetchError::fatal(anyhow::anyhow!("reading the answer of {current} (over {limit} bytes?): {e}"))
                })?;
                Ok::<_, FetchError>(Answer {
                    status: parts.status,
                    headers: parts.headers,
                    body: body.to_bytes().to_vec(),
                })
            };
            let answer = tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| FetchError {
                error: anyhow::anyhow!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                retryable: true,
            })??;
            if !answer.status.is_redirection() {
                return Ok(answer);
            }
            let location = answer.headers.get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                FetchError::fatal(anyhow::anyhow!("{current} answered {} without a Location", answer.status))
            })?;
            current =
                current.join(location).map_err(|e| FetchError::fatal(anyhow::anyhow!("redirect {location}: {e}")))?;
            if current.host_str().map(str::to_owned) != origin {
                headers.remove(AUTHORIZATION);
            }
        }
        Err(FetchError::fatal(anyhow::anyhow!("{url}: more than {MAX_REDIRECTS} redirects")))
    }

    /// The `Authorization` value stored for `scope`, if a challenge was answered.
    fn authorization(&self, scope: &str) -> Option<String> {
        self.authorizations.lock().ok()?.get(scope).cloned()
    }

    fn remember(&self, scope: &str, authorization: String) {
        if let Ok(mut map) = self.authorizations.lock() {
            map.insert(scope.to_owned(), authorization);
        }
    }

    async fn answer_challenge(&self, header: &str, scope: &str) -> anyhow::Result<()> {
        match Challenge::parse(header) {
            Some(Challenge::Basic) => {
                let Some((user, password)) = &self.credentials else {
                    bail!(
                        "{} asks for a user name and password: set FINTECH_REGISTRY_USERNAME and FINTECH_REGISTRY_PASSWORD",
                        self.host
                    );
                };
                self.remember(scope, basic_auth(user, password.expose()));
                Ok(())
            }
            Some(Challenge::Bearer { realm, service, scope: asked }) => {
                let scope_param = asked.unwrap_or_else(|| scope.to_owned());
                let mut token_url = url::Url::parse(&realm).with_context(|| format!("token realm {realm:?}"))?;
                token_url.query_pairs_mut().append_pair("scope", &scope_param);
                if let Some(service) = &service {
                    token_url.query_pairs_mut().append_pair("service", service);
                }
                let mut headers = HeaderMap::new();
                if let Some((user, password)) = &self.credentials {
                    let mut value = HeaderValue::from_str(&basic_auth(user, password.expose()))?;
                    value.set_sensitive(true);
                    headers.insert(AUTHORIZATION, value);
                }
                let response = self
                    .fetch(token_url.as_str(), headers, MAX_MANIFEST_BYTES)
                    .await
                    .map_err(|e| e.error)
                    .with_context(|| format!("asking {realm} for a registry token"))?;
                if !response.status.is_success() {
                    bail!(
                        "{realm} refused a token for {scope_param} ({}){}",
                        response.status,
                        if self.credentials.is_none() {
                            "; set FINTECH_REGISTRY_USERNAME and FINTECH_REGISTRY_PASSWORD"
                        } else {
                            ""
                        }
                    );
                }
                let body = response.body;
                let answer: TokenAnswer =
                    serde_json::from_slice(&body).with_context(|| format!("{realm}: the token answer"))?;
                let token = answer
                    .token
                    .or(answer.access_token)
                    .ok_or_else(|| anyhow::anyhow!("{realm}: the answer holds no token"))?;
                self.remember(scope, format!("Bearer {token}"));
                Ok(())
            }
            None => bail!("{}: unsupported authentication challenge {header:?}", self.host),
        }
    }
}

/// `Authorization: Basic base64(user:password)`.
fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding (registry auth headers and auth files).
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The `rel="next"` target of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(LINK)?.to_str().ok()?;
    link.split(',').find(|part| part.contains("rel=\"next\"")).and_then(|part| {
        let start = part.find('<')? + 1;
        let end = part.find('>')?;
        Some(part.get(start..end)?.to_owned())
    })
}

async fn backoff(attempt: u32) {
    let base_ms = 200u64 << attempt.min(5);
    let jitter_ms = rand::random_range(0..=base_ms / 2);
    tokio::time::sleep(Duration::from_millis(base_ms + jitter_ms)).await;
}

/// Why a fetch failed, and whether trying again may help.
#[derive(Debug)]
struct FetchError {
    error: anyhow::Error,
    retryable: bool,
}

impl FetchError {
    fn fatal(error: anyhow::Error) -> Self {
        FetchError { error, retryable: false }
    }

    fn transport(e: hyper_util::client::legacy::Error) -> Self {
        FetchError { retryable: e.is_connect(), error: anyhow::Error::new(e) }
    }
}

impl From<anyhow::Error> for FetchError {
    fn from(error: anyhow::Error) -> Self {
        FetchError::fatal(error)
    }
}

/// A hyper client speaking HTTP/1.1, and HTTPS through rustls with the ring provider (the one
/// the workspace already uses for sqlx) and the system's certificate authorities. reqwest's own
/// rustls features are not used: enabling them for the workspace would make every other crate's
/// reqwest client need a process-wide crypto provider. `notify bitbucket` uses it too, with a body.
pub(crate) fn https_client<B>(
    tls_verify: bool,
) -> anyhow::Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, B>>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = if tls_verify {
        builder
            .with_provider_and_native_roots(provider)
            .context("no CA certificates found for HTTPS (apt-get install -y ca-certificates, or set SSL_CERT_FILE)")?
    } else {
        // Plain HTTP only: an empty trust store, so an HTTPS redirect fails instead of trusting anything.
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS configuration")?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        builder.with_tls_config(config)
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_checked() {
        let d = Digest::of(b"");
        assert_eq!(d.as_str(), "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(Digest::parse(d.as_str()).is_ok());
        assert!(Digest::parse("sha256:E3B0").is_err());
        assert!(Digest::parse("md5:abc").is_err());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
    }

    #[test]
    fn registry_paths_split_host_and_repository() {
        let r = RegistryPath::parse("127.0.0.1:5000/fintech/").expect("valid");
        assert_eq!(r.host, "127.0.0.1:5000");
        assert_eq!(r.repository("contact-us"), "fintech/contact-us");
        assert_eq!(r.image("ledger"), "127.0.0.1:5000/fintech/ledger");
        assert!(RegistryPath::parse("fintech").is_err());
        assert!(RegistryPath::parse("host/Upper").is_err());
        assert!(RegistryPath::parse("ho st/x").is_err());
    }

    #[test]
    fn challenges_parse() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://europe-west1-docker.pkg.dev/v2/token",service="europe-west1-docker.pkg.dev",scope="repository:p/r:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://europe-west1-docker.pkg.dev/v2/token".into(),
                service: Some("europe-west1-docker.pkg.dev".into()),
                scope: Some("repository:p/r:pull,push".into()),
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn basic_auth_is_base64() {
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_auth("a", "b"), "Basic YTpi");
        assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
    }

    #[test]
    fn next_links_are_followed() {
        let mut headers = HeaderMap::new();
        headers.insert(LINK, "</v2/x/tags/list?last=b&n=2>; rel=\"next\"".parse().expect("header"));
        assert_eq!(next_link(&headers).as_deref(), Some("/v2/x/tags/list?last=b&n=2"));
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}
