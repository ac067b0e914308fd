import Contracts
import Foundation
import Logging
import ServiceKit
import TenantKit

/// Delivers a tenant's database changes to the subscriptions here whose bindings ask for them
/// and whose principal may read the row (docs/realtime.md "Postgres changes").
///
/// Who may read: the service always; anyone else as the table's row-level security decides for
/// their claims (`ChangeStore.visible`), checked once per distinct principal and change. A
/// table without row-level security is read by every subscriber of the project. A delete cannot
/// be checked against a row that is gone: on a table with row-level security its old record is
/// reduced to the primary key, as Supabase does, and it reaches every matching subscriber.
struct ChangeDispatcher: Sendable {
    let hub: ChannelHub
    let tenants: RealtimeTenants
    let store: ChangeStore
    let rowSecurity: RowSecurityCache
    let logger: Logger

    func dispatch(_ text: String) async {
        do {
            guard let notice = DatabaseChange.notice(text) else {
                logger.warning("unreadable database change notification", metadata: ["notification.bytes": "\(text.utf8.count)"])
                return
            }
            let change: DatabaseChange
            switch notice {
            case .change(let inline):
                change = inline
            case .outbox(let reference):
                guard let kept = try await store.outboxed(reference), let decoded = DatabaseChange.decode(kept) else { return }
                change = decoded
            }
            try await deliver(change)
        } catch {
            logger.error("could not deliver a database change", metadata: ["error": "\(error)"])
        }
    }

    private func deliver(_ change: DatabaseChange) async throws {
        guard change.schema.hasPrefix("tenant_"), let tenant = try await tenants.tenant(slug: String(change.schema.dropFirst("tenant_".count))) else { return }
        let row = change.row
        var matched: [(Subscription, [Int])] = []
        for subscription in hub.changeSubscribers(tenant.registered.id) {
            let ids = subscription.bindings.filter { $0.matches(table: change.table, type: change.type, row: row) }.map(\.id)
            if !ids.isEmpty { matched.append((subscription, ids)) }
        }
        guard !matched.isEmpty else { return }
        let secured = try await rowSecurity.enabled(schema: change.schema, table: change.table, store: store)
        let data: String
        if change.type == "DELETE", secured {
            data = change.eventData(oldRecord: (change.oldRecord ?? [:]).filter { change.primaryKey.contains($0.key) })
        } else {
            data = change.eventData()
        }
        var verdicts: [String: Bool] = [:]
        for (subscription, ids) in matched {
            if secured, change.type != "DELETE", let claims = subscription.principal.claims {
                if verdicts[claims] == nil {
                    do {
                        verdicts[claims] = try await store.visible(change, claims: claims)
                    } catch {
                        // A policy that fails (it reads what the platform role may not): withheld
                        // from these claims, delivered to the others.
                        logger.warning("a database change's rights check failed; withheld", metadata: [
                            "error": "\(error)", "tenant.id": "\(tenant.registered.id)", "table": "\(change.table)",
                        ])
                        verdicts[claims] = false
                    }
                }
                guard verdicts[claims] == true else { continue }
            }
            let payload = "{\"ids\":[" + ids.map(String.init).joined(separator: ",") + "],\"data\":" + data + "}"
            subscription.deliverChange(frame: subscription.serializer.frame(topic: subscription.channel.socketTopic, event: "postgres_changes",
                                                                            payload: payload))
        }
    }
}

/// Whether tables have row-level security, each read at most once per `ttl`.
final class RowSecurityCache: Sendable {
    private let cache: ExpiringCache<String, Bool>

    init(ttl: Duration = .seconds(5)) {
        cache = ExpiringCache(ttl: ttl)
    }

    func enabled(schema: String, table: String, store: ChangeStore) async throws -> Bool {
        let key = schema + "." + table
        if let cached = cache.get(key) { return cached.value }
        let enabled = try await store.rowSecurity(schema: schema, table: table)
        cache.set(key, enabled)
        return enabled
    }
}
