/// The rules for a project's slug, shared by every service that takes one.
///
/// Lowercase letters, digits and underscores, 3–40 long, starting with a letter: safe inside
/// SQL identifiers and URLs, and `tenant_<slug>` stays well under PostgreSQL's 63-byte limit.
public enum ProjectSlug {
    public static let rule = "3 to 40 characters: lowercase letters, digits or underscores, starting with a letter"

    public static func isValid(_ slug: String) -> Bool {
        let bytes = Array(slug.utf8)
        guard (3...40).contains(bytes.count), let first = bytes.first, isLetter(first) else { return false }
        return bytes.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
    }

    /// A valid slug made from a project name ("My App!" → "my_app"), or nil when the name holds
    /// too few letters or digits to make one.
    public static func derive(from name: String) -> String? {
        var slug = ""
        var pendingSeparator = false
        for scalar in name.lowercased().unicodeScalars {
            if scalar.isASCII, isLetter(UInt8(scalar.value)) || isDigit(UInt8(scalar.value)) {
                if pendingSeparator, !slug.isEmpty { slug.append("_") }
                pendingSeparator = false
                slug.unicodeScalars.append(scalar)
            } else {
                pendingSeparator = true
            }
        }
        if let first = slug.utf8.first, isDigit(first) { slug = "p_" + slug }
        if slug.utf8.count > 40 {
            slug = String(slug.prefix(40))
            while slug.hasSuffix("_") { slug.removeLast() }
        }
        return isValid(slug) ? slug : nil
    }

    private static func isLetter(_ byte: UInt8) -> Bool { byte >= 97 && byte <= 122 }
    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
}
