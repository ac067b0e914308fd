import Foundation
import Logging
import Synchronization
import TenantKit

/// What every socket and route of one replica shares.
struct RealtimeServices: Sendable {
    let replica: UUID
    let settings: RealtimeSettings
    let hub: ChannelHub
    let broadcasts: BroadcastStore
    let presence: PresenceStore
    let limiter: RealtimeLimiter
    let tenants: RealtimeTenants
    let projects: ProjectResolver
    let credentials: any TenantCredentialResolver
    let counter: SubscriptionCounter
    let logger: Logger

    /// A replica-unique subscription id.
    func nextSubscriptionID() -> String {
        replica.uuidString.lowercased().prefix(8) + ":" + String(counter.next())
    }
}

final class SubscriptionCounter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}
