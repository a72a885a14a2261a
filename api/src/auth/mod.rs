//! Who is calling: bearer tokens (EdDSA JWTs) decoded once per request into an
//! [`Identity`] that resolvers and guards read.

pub mod access;
pub mod keys;
pub mod partners;
pub mod tokens;

use crate::domain::measures::Domain;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, async_graphql::Enum)]
#[serde(rename_all = "lowercase")]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// No token: the public.
    Anonymous,
    Admin,
    Partner,
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Anonymous => "anonymous",
            Role::Admin => "admin",
            Role::Partner => "partner",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "partner" => Some(Role::Partner),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }
}

/// The caller of one request, resolved once by the HTTP layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub role: Role,
    /// Domains a partner may check: the token's, narrowed later by the partner record.
    pub domains: Vec<Domain>,
    /// County- or city-level division an admin is limited to.
    pub region: Option<String>,
    pub token_id: Option<String>,
}

impl Identity {
    pub fn anonymous() -> Self {
        Self {
            subject: "anonymous".into(),
            role: Role::Anonymous,
            domains: Vec::new(),
            region: None,
            token_id: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.role == Role::Anonymous
    }
}
