import Realtime
import ServiceKit

/// Entry point of the `realtime` service: configuration from the environment, then the library's
/// `buildApplication`, run until SIGTERM/SIGINT.
@main
struct RealtimeApp {
    static func main() async {
        await ServiceMain.run(.realtime) { configuration in
            try buildApplication(configuration)
        }
    }
}
