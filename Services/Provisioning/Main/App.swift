import Provisioning
import ServiceKit

/// Entry point of the `provisioning` service: configuration from the environment, then the library's
/// `buildApplication`, run until SIGTERM/SIGINT.
@main
struct ProvisioningApp {
    static func main() async {
        await ServiceMain.run(.provisioning) { configuration in
            try buildApplication(configuration)
        }
    }
}
