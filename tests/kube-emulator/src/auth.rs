//! Authentication (static bearer tokens mapped to user names) and authorization (an RBAC-like
//! table of rules the test sets: verbs × group × resources × namespaces × resourceNames).

use std::collections::HashMap;

/// One allow rule, like a `PolicyRule` bound in a namespace (or cluster-wide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The user the rule is bound to (`None`: every authenticated user).
    pub user: Option<String>,
    /// Verbs: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or `*`.
    pub verbs: Vec<String>,
    /// The API group (`""` for core), or `*`.
    pub group: String,
    /// Resources, with a subresource as `wasmplugins/status`, or `*`.
    pub resources: Vec<String>,
    /// Namespaces the rule applies in (`None`: all, like a ClusterRoleBinding). A rule limited
    /// to namespaces never allows a request across all namespaces.
    pub namespaces: Option<Vec<String>>,
    /// Object names the rule is limited to (empty: any). As in RBAC, a rule with names never
    /// allows `create`, nor a `list` or `watch` unless its field selector requires
    /// `metadata.name` to be one of them (the apiserver then authorizes it by that name).
    pub resource_names: Vec<String>,
}

impl Rule {
    /// A rule allowing `verbs` on `resources` of `group` for every user, in every namespace.
    pub fn allow(verbs: &[&str], group: &str, resources: &[&str]) -> Rule {
        Rule {
            user: None,
            verbs: verbs.iter().map(ToString::to_string).collect(),
            group: group.to_string(),
            resources: resources.iter().map(ToString::to_string).collect(),
            namespaces: None,
            resource_names: Vec::new(),
        }
    }

    /// Limits the rule to the given namespaces.
    #[must_use]
    pub fn in_namespaces(mut self, namespaces: &[&str]) -> Rule {
        self.namespaces = Some(namespaces.iter().map(ToString::to_string).collect());
        self
    }

    /// Limits the rule to the given object names.
    #[must_use]
    pub fn names(mut self, names: &[&str]) -> Rule {
        self.resource_names = names.iter().map(ToString::to_string).collect();
        self
    }

    /// Binds the rule to one user.
    #[must_use]
    pub fn for_user(mut self, user: &str) -> Rule {
        self.user = Some(user.to_string());
        self
    }

    fn allows(&self, a: &Attributes<'_>) -> bool {
        let any = |list: &[String], x: &str| list.iter().any(|v| v == "*" || v == x);
        self.user.as_deref().is_none_or(|u| u == a.user)
            && any(&self.verbs, a.verb)
            && (self.group == "*" || self.group == a.group)
            && any(&self.resources, &a.resource)
            && match (&self.namespaces, a.namespace) {
                (None, _) => true,
                (Some(list), Some(ns)) => list.iter().any(|n| n == ns),
                (Some(_), None) => false,
            }
            && (self.resource_names.is_empty()
                || (!a.name.is_empty() && self.resource_names.iter().any(|n| n == a.name)))
    }
}

/// What a request asks to do, as the authorizer sees it.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    /// The authenticated user.
    pub user: &'a str,
    /// The verb (`get`, `list`, `watch`, ...).
    pub verb: &'a str,
    /// The API group.
    pub group: &'a str,
    /// The resource, with `/subresource` when there is one.
    pub resource: String,
    /// The namespace (None across all namespaces).
    pub namespace: Option<&'a str>,
    /// The object name (for list and watch: the one `fieldSelector=metadata.name=` requires;
    /// empty for create and unselected lists).
    pub name: &'a str,
}

/// Tokens and rules.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    tokens: HashMap<String, String>,
    /// `None` until the test sets rules: everything is allowed.
    rules: Option<Vec<Rule>>,
}

impl Auth {
    /// Registers a token for a user.
    pub fn add_token(&mut self, token: &str, user: &str) {
        self.tokens.insert(token.to_string(), user.to_string());
    }

    /// The user a `Authorization` header value authenticates, if any.
    pub fn authenticate(&self, header: Option<&str>) -> Option<String> {
        let token = header?.strip_prefix("Bearer ")?.trim();
        self.tokens.get(token).cloned()
    }

    /// Replaces the rules (from then on, only what they allow is allowed).
    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        self.rules = Some(rules);
    }

    /// Back to allowing everything.
    pub fn allow_all(&mut self) {
        self.rules = None;
    }

    /// Whether the request is allowed.
    pub fn authorize(&self, a: &Attributes<'_>) -> bool {
        self.rules
            .as_ref()
            .is_none_or(|rules| rules.iter().any(|r| r.allows(a)))
    }
}
