// Throughput of the Postgres kit's pool, to be read beside pgbench on the same database in the
// same run (deploy/scripts/bench-postgres.sh does both and prints the ratio).
//
//   postgres-bench <select1|pgbench-S> <connections> <seconds>
//
// Prints one line: `kit <mode> connections=<n> seconds=<s> transactions=<count> tps=<tps> p50_ms=… p99_ms=…`.
import Foundation
import Logging
import Postgres

@main
struct PostgresBench {
    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count == 4, let connections = Int(arguments[2]), let seconds = Double(arguments[3]),
              let url = ProcessInfo.processInfo.environment["DATABASE_URL"]
        else {
            print("usage: DATABASE_URL=… postgres-bench <select1|pgbench-S> <connections> <seconds>")
            exit(2)
        }
        let mode = arguments[1]
        let pool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: url, applicationName: "bench", maximumConnections: connections),
            logger: Logger(label: "bench")
        )
        var accounts = 100_000
        if mode == "pgbench-S" {
            let scale = try? await pool.query("SELECT count(*)::int8 AS n FROM pgbench_branches").single().decode("n", as: Int.self)
            accounts = (scale ?? 1) * 100_000
        }
        let accountCount = accounts
        let all = await measure(pool: pool, mode: mode, accounts: accountCount, clients: connections, seconds: seconds)
        await pool.close()
        guard !all.isEmpty else {
            print("no transactions completed")
            exit(1)
        }
        func percentile(_ p: Double) -> Double { all[min(all.count - 1, Int(Double(all.count) * p))] }
        let tps = Double(all.count) / seconds
        print(String(format: "kit %@ connections=%d seconds=%.0f transactions=%d tps=%.0f p50_ms=%.3f p99_ms=%.3f",
                     mode, connections, seconds, all.count, tps, percentile(0.5), percentile(0.99)))
    }

    /// Runs `clients` loops of the query until the deadline; returns every latency in ms, sorted.
    nonisolated static func measure(pool: PostgresPool, mode: String, accounts: Int, clients: Int, seconds: Double) async -> [Double] {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        let perClient: [[Double]] = await withTaskGroup(of: [Double].self) { group in
            for _ in 0..<clients {
                group.addTask {
                    var latencies: [Double] = []
                    latencies.reserveCapacity(200_000)
                    while ContinuousClock.now < deadline {
                        let started = ContinuousClock.now
                        do {
                            if mode == "pgbench-S" {
                                let aid = Int.random(in: 1...accounts)
                                _ = try await pool.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)")
                            } else {
                                _ = try await pool.query("SELECT 1")
                            }
                        } catch {
                            print("query failed: \(error)")
                            return latencies
                        }
                        let elapsed = ContinuousClock.now - started
                        latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                    }
                    return latencies
                }
            }
            var all: [[Double]] = []
            for await latencies in group { all.append(latencies) }
            return all
        }
        return perClient.flatMap { $0 }.sorted()
    }
}
