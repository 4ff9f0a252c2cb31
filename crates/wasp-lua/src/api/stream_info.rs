//! `handle:streamInfo()`, `handle:connection()` and the SSL connection object.

use std::rc::Rc;

use mlua::{Lua, UserData, UserDataMethods, Value};

use super::metadata::DynamicMetadataObject;
use crate::access::SslInfo;
use crate::state::StreamShared;

pub(crate) struct StreamInfoObject {
    pub shared: Rc<StreamShared>,
}

impl UserData for StreamInfoObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("protocol", |_, this, ()| {
            Ok(this.shared.info.protocol.clone())
        });
        methods.add_method("routeName", |_, this, ()| {
            Ok(this.shared.info.route_name.clone())
        });
        methods.add_method("downstreamLocalAddress", |_, this, ()| {
            Ok(this.shared.info.downstream_local_address.clone())
        });
        methods.add_method("downstreamDirectLocalAddress", |_, this, ()| {
            Ok(this.shared.info.downstream_direct_local_address.clone())
        });
        methods.add_method("downstreamRemoteAddress", |_, this, ()| {
            Ok(this.shared.info.downstream_remote_address.clone())
        });
        methods.add_method("downstreamDirectRemoteAddress", |_, this, ()| {
            Ok(this.shared.info.downstream_direct_remote_address.clone())
        });
        methods.add_method("requestedServerName", |_, this, ()| {
            Ok(this.shared.info.requested_server_name.clone())
        });
        methods.add_method("dynamicMetadata", |_, this, ()| {
            Ok(DynamicMetadataObject {
                shared: this.shared.clone(),
            })
        });
        methods.add_method("downstreamSslConnection", |lua, this, ()| {
            ssl_object(lua, &this.shared)
        });
    }
}

/// `handle:connection()`: only `ssl()` is offered.
pub(crate) struct ConnectionObject {
    pub shared: Rc<StreamShared>,
}

impl UserData for ConnectionObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("ssl", |lua, this, ()| ssl_object(lua, &this.shared));
    }
}

/// nil without TLS, as Envoy.
fn ssl_object(lua: &Lua, shared: &StreamShared) -> mlua::Result<Value> {
    match &shared.info.ssl {
        Some(ssl) => Ok(Value::UserData(
            lua.create_userdata(SslObject(ssl.clone()))?,
        )),
        None => Ok(Value::Nil),
    }
}

pub(crate) struct SslObject(SslInfo);

fn string_list(lua: &Lua, items: &[String]) -> mlua::Result<mlua::Table> {
    lua.create_sequence_from(items.iter().map(String::as_str))
}

impl UserData for SslObject {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("peerCertificatePresented", |_, this, ()| {
            Ok(this.0.peer_certificate_presented)
        });
        methods.add_method("peerCertificateValidated", |_, this, ()| {
            Ok(this.0.peer_certificate_validated)
        });
        methods.add_method("tlsVersion", |_, this, ()| Ok(this.0.tls_version.clone()));
        methods.add_method("ciphersuiteId", |_, this, ()| {
            Ok(format!("0x{:04x}", this.0.ciphersuite_id))
        });
        methods.add_method("ciphersuiteString", |_, this, ()| {
            Ok(this.0.ciphersuite_string.clone())
        });
        methods.add_method("sessionId", |_, this, ()| Ok(this.0.session_id.clone()));
        methods.add_method("sha256PeerCertificateDigest", |_, this, ()| {
            Ok(this.0.sha256_peer_certificate_digest.clone())
        });
        methods.add_method("serialNumberPeerCertificate", |_, this, ()| {
            Ok(this.0.serial_number_peer_certificate.clone())
        });
        methods.add_method("issuerPeerCertificate", |_, this, ()| {
            Ok(this.0.issuer_peer_certificate.clone())
        });
        methods.add_method("subjectPeerCertificate", |_, this, ()| {
            Ok(this.0.subject_peer_certificate.clone())
        });
        methods.add_method("subjectLocalCertificate", |_, this, ()| {
            Ok(this.0.subject_local_certificate.clone())
        });
        methods.add_method("uriSanPeerCertificate", |lua, this, ()| {
            string_list(lua, &this.0.uri_san_peer_certificate)
        });
        methods.add_method("uriSanLocalCertificate", |lua, this, ()| {
            string_list(lua, &this.0.uri_san_local_certificate)
        });
        methods.add_method("dnsSansPeerCertificate", |lua, this, ()| {
            string_list(lua, &this.0.dns_sans_peer_certificate)
        });
        methods.add_method("dnsSansLocalCertificate", |lua, this, ()| {
            string_list(lua, &this.0.dns_sans_local_certificate)
        });
    }
}
