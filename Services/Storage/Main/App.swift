import Foundation
import Storage
import ServiceKit

/// Entry point of the `storage` service: configuration from the environment, then the library's
/// `buildApplication`, run until SIGTERM/SIGINT. `storage check …` runs the consistency check
/// instead (`ConsistencyCommand`).
@main
struct StorageApp {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "check" {
            exit(await ConsistencyCommand.run(Array(arguments.dropFirst())))
        }
        await ServiceMain.run(.storage) { configuration in
            try buildApplication(configuration)
        }
    }
}
