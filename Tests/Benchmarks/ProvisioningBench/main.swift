// End-to-end provisioning latency: POST /v1/register on auth until the project reports
// `ready` (or, with a service stopped, `failed` after compensation), one registration at a
// time, N times. deploy/scripts/bench-provisioning.sh runs it beside the bare DDL.
//
//   provisioning-bench <auth-url> <provisioning-url> <service-token> <count> <ready|failed>
import Contracts
import Foundation
import HTTPClient

@main
struct ProvisioningBench {
    static func main() async {
        let arguments = CommandLine.arguments
        guard arguments.count == 6, let count = Int(arguments[4]), let target = ProjectState(rawValue: arguments[5]) else {
            print("usage: provisioning-bench <auth-url> <provisioning-url> <service-token> <count> <ready|failed>")
            exit(2)
        }
        do {
            let latencies = try await measure(auth: arguments[1], provisioning: arguments[2], token: arguments[3], count: count, target: target)
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
            print(String(format: "saga %@ n=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f", target.rawValue, sorted.count,
                         percentile(0.5), percentile(0.99), sorted.last ?? 0))
        } catch {
            print("benchmark failed: \(error)")
            exit(1)
        }
    }

    nonisolated static func measure(auth: String, provisioning: String, token: String, count: Int, target: ProjectState) async throws -> [Double] {
        let client = try CurlHTTPClient(configuration: HTTPClientConfiguration(requestTimeout: .seconds(30), retry: .none))
        defer { Task { await client.shutdown() } }
        let run = UUID().uuidString.prefix(8).lowercased()
        var latencies: [Double] = []
        for index in 0..<count {
            let started = ContinuousClock.now
            let accepted = try await client.send(
                .post, auth + "/v1/register",
                body: RegisterRequest(email: "bench\(index)_\(run)@example.test", password: "benchmark password 123",
                                      projectName: "Bench", slug: "bench_\(run)_\(index)"),
                as: ProjectAccepted.self
            )
            let url = provisioning + "/v1/projects/" + accepted.projectId.uuidString.lowercased()
            let headers = HTTPClientHeaders([(PlatformHeader.serviceToken, token)])
            while true {
                let status = try await client.get(url, as: ProjectStatus.self, headers: headers)
                if status.status == target { break }
                if status.status == .failed || status.status == .ready {
                    throw BenchError(description: "project ended \(status.status.rawValue), expected \(target.rawValue)")
                }
                try await Task.sleep(for: .milliseconds(2))
            }
            let elapsed = ContinuousClock.now - started
            latencies.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        }
        return latencies
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
}
