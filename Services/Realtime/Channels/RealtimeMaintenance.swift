import Foundation
import Logging
import ServiceKit
import ServiceLifecycle

/// The replica's upkeep: it beats in `realtime.replicas` every few seconds, publishes its
/// sockets per tenant and reads the others' (`SocketCensus`), removes the presence of replicas
/// that stopped beating (each leave announced), and drops broadcasts older than the replay
/// window (and channels idle as long with nothing retained). On a clean stop it removes itself,
/// its sockets' presence and counts at once.
struct RealtimeMaintenance: Service {
    let services: RealtimeServices
    let census: SocketCensus
    let readiness: Readiness
    let beatInterval: Duration = .seconds(5)
    let pruneInterval: Duration = .seconds(60)

    func run() async throws {
        let logger = services.logger
        var sincePrune = pruneInterval
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            if readiness.migrationsApplied {
                do {
                    try await services.presence.beat(services.replica)
                    services.limiter.setElsewhere(try await census.publish(services.replica, sockets: services.limiter.localSockets))
                    let left = try await services.presence.removeReplicas(silentFor: services.settings.replicaTimeoutSeconds, except: services.replica)
                    if left > 0 { logger.info("removed the presence of stopped replicas", metadata: ["presence.left": "\(left)"]) }
                    if sincePrune >= pruneInterval {
                        sincePrune = .zero
                        try await services.broadcasts.prune(olderThanSeconds: services.settings.replaySeconds)
                    }
                } catch {
                    logger.warning("realtime upkeep failed; retrying", metadata: ["error": "\(error)"])
                }
            }
            let interval = readiness.migrationsApplied ? beatInterval : .milliseconds(100)
            sincePrune += interval
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        do {
            try await services.presence.removeReplica(services.replica)
        } catch {
            logger.warning("could not remove this replica's presence on stop", metadata: ["error": "\(error)"])
        }
    }
}
