//! `listeners[].tls` and `clusters[].tls`: certificate, key and CA files, client certificates
//! (mTLS both ways), the SANs an upstream must present. The files are loaded here once, so
//! that a bad certificate or a key that does not match is reported with the field that names
//! it; the data plane loads them again (and re-reads them when they change).

use serde_saphyr::Spanned;
use wasp_spec::{CertificateFiles, ClientTls, ServerTls};

use crate::raw::{RawClientTls, RawServerTls};
use crate::values::check_server_name;

use super::{Builder, Result};

impl Builder<'_> {
    pub(super) fn server_tls(&self, tls: &RawServerTls, path: &str) -> Result<ServerTls> {
        let ca_file = tls
            .ca_file
            .as_ref()
            .map(|f| self.existing_file(f, &format!("{path}.ca_file")))
            .transpose()?;
        if let (None, Some(require)) = (&ca_file, &tls.require_client_certificate) {
            return Err(self.errs.at(
                &require.referenced,
                format!("{path}.require_client_certificate"),
                "needs `ca_file`: the CAs client certificates are verified against",
            ));
        }
        let spec = ServerTls {
            cert_file: self.existing_file(&tls.cert_file, &format!("{path}.cert_file"))?,
            key_file: self.existing_file(&tls.key_file, &format!("{path}.key_file"))?,
            ca_file,
            require_client_certificate: tls
                .require_client_certificate
                .as_ref()
                .is_none_or(|r| r.value),
        };
        wasp_tls::ServerContext::new(&spec, &[])
            .map_err(|e| self.errs.at(&tls.cert_file.referenced, path, e.to_string()))?;
        Ok(spec)
    }

    pub(super) fn client_tls(&self, tls: &RawClientTls, path: &str) -> Result<ClientTls> {
        let sni = match &tls.sni {
            Some(sni) if sni.value.trim().is_empty() => {
                return Err(self.errs.at(
                    &sni.referenced,
                    format!("{path}.sni"),
                    "must not be empty (leave it out to use the endpoint's host)",
                ));
            }
            Some(sni) => Some(
                check_server_name(sni.value.trim())
                    .map_err(|msg| self.errs.at(&sni.referenced, format!("{path}.sni"), msg))?,
            ),
            None => None,
        };
        let client_certificate = match (&tls.cert_file, &tls.key_file) {
            (Some(cert), Some(key)) => Some(CertificateFiles {
                cert_file: self.existing_file(cert, &format!("{path}.cert_file"))?,
                key_file: self.existing_file(key, &format!("{path}.key_file"))?,
            }),
            (None, None) => None,
            (Some(one), None) | (None, Some(one)) => {
                let (given, missing) = if tls.cert_file.is_some() {
                    ("cert_file", "key_file")
                } else {
                    ("key_file", "cert_file")
                };
                return Err(self.errs.at(
                    &one.referenced,
                    format!("{path}.{given}"),
                    format!("a client certificate needs both `cert_file` and `key_file`: `{missing}` is missing"),
                ));
            }
        };
        let mut subject_alt_names = Vec::new();
        for (i, san) in tls
            .subject_alt_names
            .iter()
            .flat_map(|s| &s.value)
            .enumerate()
        {
            if san.value.trim().is_empty() {
                return Err(self.errs.at(
                    &san.referenced,
                    format!("{path}.subject_alt_names[{i}]"),
                    "must not be empty",
                ));
            }
            subject_alt_names.push(san.value.trim().to_string());
        }
        let spec = ClientTls {
            sni,
            ca_file: tls
                .ca_file
                .as_ref()
                .map(|f| self.existing_file(f, &format!("{path}.ca_file")))
                .transpose()?,
            client_certificate,
            subject_alt_names,
        };
        let at = tls
            .cert_file
            .as_ref()
            .or(tls.ca_file.as_ref())
            .map(|f: &Spanned<String>| &f.referenced);
        wasp_tls::client_config(&spec).map_err(|e| self.errs.at_opt(at, path, e.to_string()))?;
        Ok(spec)
    }
}
