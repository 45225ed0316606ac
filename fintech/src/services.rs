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

/// The service called `name`, or an error listing the known ones.
pub fn find(name: &str) -> anyhow::Result<&'static dyn Service> {
    SERVICES.iter().copied().find(|s| s.name() == name).ok_or_else(|| {
        let known: Vec<_> = SERVICES.iter().map(|s| s.name()).collect();
        anyhow::anyhow!("unknown service {name:?}; known services: {}", known.join(", "))
    })
}
