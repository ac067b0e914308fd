import Storage
import ServiceKit

/// Entry point of the `storage` service: configuration from the environment, then the library's
/// `buildApplication`, run until SIGTERM/SIGINT.
@main
struct StorageApp {
    static func main() async {
        await ServiceMain.run(.storage) { configuration in
            try buildApplication(configuration)
        }
    }
}
