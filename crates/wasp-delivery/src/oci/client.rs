//! A session with one repository of one registry: authenticated requests, manifests (digest
//! checked) and blobs (digest checked as they arrive, before anything uses them).

use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use tokio::time::Instant;

use super::auth::{self, parse_challenge};
use super::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Descriptor, MANIFEST_LIMIT, Manifest, OCI_INDEX,
    OCI_MANIFEST, sha256_digest,
};
use crate::error::{ErrorContext, FetchError, describe_body};
use crate::http::{HttpClient, HttpError, Req, Resp};
use crate::secret::RegistryAuth;
use crate::url::OciReference;

pub(crate) struct Session<'a> {
    http: &'a HttpClient,
    /// `https://host[:port]` or `http://host[:port]` for insecure registries.
    base: String,
    pub(crate) repository: String,
    creds: Option<RegistryAuth>,
    /// The `Authorization` value that last worked (or was obtained from a challenge).
    authorization: Option<String>,
    /// `pull` or `pull,push`, for scopes the registry does not spell out.
    actions: &'static str,
    pub(crate) deadline: Instant,
    pub(crate) at: ErrorContext,
}

/// A fetched manifest with its digest.
pub(crate) struct FetchedManifest {
    pub digest: String,
    pub manifest: Manifest,
    pub media_type: String,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        http: &'a HttpClient,
        reference: &OciReference,
        creds: Option<RegistryAuth>,
        push: bool,
        deadline: Instant,
        at: ErrorContext,
    ) -> Self {
        let host = reference.api_host();
        // Plain HTTP only for registries the operator listed; everything else is HTTPS.
        let scheme = if http.insecure().contains(host) {
            "http"
        } else {
            "https"
        };
        Session {
            http,
            base: format!("{scheme}://{host}"),
            repository: reference.repository.clone(),
            creds,
            authorization: None,
            actions: if push { "pull,push" } else { "pull" },
            deadline,
            at,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v2/{}/{path}", self.base, self.repository)
    }

    /// Sends with the current credentials; on a 401 answers the challenge once and resends.
    pub(crate) async fn send(&mut self, req: Req, limit: u64) -> Result<Resp, FetchError> {
        let mut req = req;
        if let Some(a) = &self.authorization {
            req.set_header(AUTHORIZATION, a);
        } else if let Some(RegistryAuth::Basic { username, password }) = &self.creds {
            // Registries behind plain Basic auth answer the first request directly; a bearer
            // registry ignores a Basic header on resource requests and sends its challenge.
            req.set_header(AUTHORIZATION, &auth::basic_header(username, password));
        }
        let resp = self.raw(&req, limit).await?;
        if resp.status.as_u16() != 401 {
            return Ok(resp);
        }
        let challenges: Vec<_> = resp
            .headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            .collect();
        let Some(challenge) = challenges
            .iter()
            .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
            .or(challenges.first())
        else {
            return Err(self.status_error(&req, &resp));
        };
        let scope = format!("repository:{}:{}", self.repository, self.actions);
        let value = auth::answer(
            self.http,
            challenge,
            self.creds.as_ref(),
            &scope,
            self.deadline,
            &self.at,
        )
        .await?;
        if self.authorization.as_deref() == Some(value.as_str())
            && req.headers.iter().any(|(n, _)| *n == AUTHORIZATION)
        {
            // Same answer as before and still refused: the credentials are not good enough.
            return Err(self.status_error(&req, &resp));
        }
        self.authorization = Some(value.clone());
        req.set_header(AUTHORIZATION, &value);
        let resp = self.raw(&req, limit).await?;
        Ok(resp)
    }

    async fn raw(&self, req: &Req, limit: u64) -> Result<Resp, FetchError> {
        self.http
            .send(req, limit, self.deadline)
            .await
            .map_err(|e| self.http_error(req, e, limit))
    }

    pub(crate) fn http_error(&self, req: &Req, e: HttpError, limit: u64) -> FetchError {
        match e {
            HttpError::TooLarge { .. } => FetchError::TooLarge {
                at: self.at.clone(),
                limit,
                what: req.describe(),
            },
            HttpError::Transport(m) | HttpError::BadUrl(m) => FetchError::Download {
                at: self.at.clone(),
                reason: m,
            },
        }
    }

    /// The error for an unexpected status, with the registry's own message.
    pub(crate) fn status_error(&self, req: &Req, resp: &Resp) -> FetchError {
        let detail = describe_body(&resp.body);
        match resp.status.as_u16() {
            401 | 403 => FetchError::Unauthorized {
                at: self.at.clone(),
                reason: format!(
                    "{} answered HTTP {}{}{}",
                    req.describe(),
                    resp.status.as_u16(),
                    if detail.is_empty() { "" } else { ": " },
                    detail
                ) + if self.creds.is_some() {
                    " (the credentials were refused)"
                } else {
                    " (no credentials were given)"
                },
            },
            status => FetchError::Status {
                at: self.at.clone(),
                what: if resp.attempts > 1 {
                    format!("{} ({} attempts)", req.describe(), resp.attempts)
                } else {
                    req.describe()
                },
                status,
                detail,
            },
        }
    }

    fn manifest_request(&self, method: Method, reference: &str) -> Req {
        Req::new(method, self.url(&format!("manifests/{reference}"))).header(
            ACCEPT,
            &[
                OCI_MANIFEST,
                DOCKER_MANIFEST,
                OCI_INDEX,
                DOCKER_MANIFEST_LIST,
            ]
            .join(", "),
        )
    }

    /// HEAD of a manifest: the digest the registry would serve, if it says (cheap re-resolve for
    /// `Always`; Docker Hub does not count HEADs against the pull rate limit).
    pub(crate) async fn head_manifest(
        &mut self,
        reference: &str,
    ) -> Result<Option<String>, FetchError> {
        let req = self.manifest_request(Method::HEAD, reference);
        let resp = self.send(req.clone(), 0).await?;
        if !resp.status.is_success() {
            return Err(self.status_error(&req, &resp));
        }
        Ok(resp
            .header("docker-content-digest")
            .filter(|d| d.starts_with("sha256:"))
            .map(str::to_string))
    }

    /// GET of a manifest, its digest computed from the bytes and checked against the registry's
    /// `Docker-Content-Digest` and against the reference when that is a digest.
    pub(crate) async fn get_manifest(
        &mut self,
        reference: &str,
    ) -> Result<FetchedManifest, FetchError> {
        let req = self.manifest_request(Method::GET, reference);
        let resp = self.send(req.clone(), MANIFEST_LIMIT).await?;
        if !resp.status.is_success() {
            return Err(self.status_error(&req, &resp));
        }
        let digest = sha256_digest(&resp.body);
        let manifest_err = |reason: String| FetchError::Manifest {
            at: self.at.clone(),
            reason,
        };
        if let Some(claimed) = resp.header("docker-content-digest")
            && claimed.starts_with("sha256:")
            && claimed != digest
        {
            return Err(manifest_err(format!(
                "{reference}: the registry says the manifest is {claimed} but its bytes hash to {digest}"
            )));
        }
        if reference.starts_with("sha256:") && reference != digest {
            return Err(manifest_err(format!(
                "asked for manifest {reference}, got bytes hashing to {digest}"
            )));
        }
        let manifest: Manifest = serde_json::from_slice(&resp.body)
            .map_err(|e| manifest_err(format!("{reference} is not a manifest: {e}")))?;
        if manifest.schema_version != 2 {
            return Err(manifest_err(format!(
                "{reference}: schemaVersion {} is not supported (Docker schema 1 images are obsolete)",
                manifest.schema_version
            )));
        }
        let content_type = resp
            .header("content-type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let media_type = if manifest.media_type.is_empty() {
            content_type.unwrap_or_default()
        } else {
            manifest.media_type.clone()
        };
        Ok(FetchedManifest {
            digest,
            manifest,
            media_type,
        })
    }

    /// GET of a blob, refused unless its bytes hash to the descriptor's digest.
    pub(crate) async fn get_blob(
        &mut self,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, FetchError> {
        let what = format!("{} ({})", desc.digest, desc.media_type);
        if !desc.digest.starts_with("sha256:") {
            return Err(FetchError::Manifest {
                at: self.at.clone(),
                reason: format!("layer {what}: only sha256 digests are supported"),
            });
        }
        if desc.size > limit {
            return Err(FetchError::TooLarge {
                at: self.at.clone(),
                limit,
                what: format!("layer {what} is {} bytes", desc.size),
            });
        }
        let req = Req::new(Method::GET, self.url(&format!("blobs/{}", desc.digest)));
        let resp = self.send(req.clone(), limit).await?;
        if !resp.status.is_success() {
            return Err(self.status_error(&req, &resp));
        }
        let got = sha256_digest(&resp.body);
        if got != desc.digest {
            return Err(FetchError::BlobDigest {
                at: self.at.clone(),
                what,
                expected: desc.digest.clone(),
                got: format!(
                    "{got} ({} bytes, manifest says {})",
                    resp.body.len(),
                    desc.size
                ),
            });
        }
        Ok(resp.body.to_vec())
    }
}
