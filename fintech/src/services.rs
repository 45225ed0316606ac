//! Every service of the platform. Adding a service to `fintech up` and `fintech serve` is one
//! line here. identity comes first: the others verify tokens with its keys; audit next, subscribed
//! before the others publish; the ledger before the services that use it.

use fintech_kit::Service;

#[rustfmt::skip]
pub static SERVICES: &[&dyn Service] = &[
    &fintech_identity::IdentityService,
    &fintech_audit::AuditService,
    &fintech_contact_us::ContactUs,
    &fintech_ledger::LedgerService,
    &fintech_accounts::AccountsService,
    &fintech_vault::VaultService,
    &fintech_risk::RiskService,
    &fintech_payments::PaymentsService,
    &fintech_notifications::NotificationsService,
    &fintech_webhooks::WebhooksService,
    &fintech_statements::StatementsService,
];

/// The services `name` calls over HTTP with a service token, as identity allows it
/// (`SERVICE_CALLS`): each needs `<name>.<callee>_url` and `auth.service_secret` when it runs
/// alone. Every service also reaches identity (`auth.identity_url`), which is not listed.
pub fn calls_of(name: &str) -> &'static [&'static str] {
    fintech_identity::routes::SERVICE_CALLS.iter().find(|(caller, _)| *caller == name).map_or(&[], |(_, calls)| calls)
}

/// The service called `name`, or an error listing the known ones.
pub fn find(name: &str) -> anyhow::Result<&'static dyn Service> {
    SERVICES.iter().copied().find(|s| s.name() == name).ok_or_else(|| {
        let known: Vec<_> = SERVICES.iter().map(|s| s.name()).collect();
        anyhow::anyhow!("unknown service {name:?}; known services: {}", known.join(", "))
    })
}
