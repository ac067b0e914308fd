import Auth
import ServiceKit

/// Entry point of the `auth` service: configuration from the environment, then the library's
/// `buildApplication`, run until SIGTERM/SIGINT.
@main
struct AuthApp {
    static func main() async {
        await ServiceMain.run(.auth) { configuration in
            try buildApplication(configuration)
        }
    }
}
