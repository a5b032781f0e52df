import Glibc
import XformReactor

/// Why a user or group could not be resolved or switched to.
public enum PrivilegeError: ExitStatusError, Equatable, Sendable {
    /// No such user (name or number).
    case unknownUser(String)
    /// No such group (name or number).
    case unknownGroup(String)
    /// The user database could not be read.
    case lookupFailed(SystemError)
    /// A `setgroups`/`setgid`/`setuid` call was refused, usually because we are not root.
    case notPermitted(SystemError)
    /// `setuid(0)` still worked after dropping: privileges were not really dropped.
    case stillPrivileged

    /// ``ExitStatus/noUser`` (67) for unknown users and groups, ``ExitStatus/noPermission`` (77)
    /// when switching is refused or incomplete, ``ExitStatus/osError`` (71) for lookup failures.
    public var exitStatus: ExitStatus {
        switch self {
        case .unknownUser, .unknownGroup: return .noUser
        case .lookupFailed: return .osError
        case .notPermitted, .stillPrivileged: return .noPermission
        }
    }

    public var description: String {
        switch self {
        case .unknownUser(let u): return "unknown user '\(u)'"
        case .unknownGroup(let g): return "unknown group '\(g)'"
        case .lookupFailed(let e): return "cannot read the user database: \(e)"
        case .notPermitted(let e): return "cannot change user or group: \(e) (are you root?)"
        case .stillPrivileged: return "privileges were not dropped: setuid(0) still succeeds"
        }
    }
}

/// The user and group to run as after binding.
public struct Credentials: Equatable, Sendable {
    /// The user id to switch to, or `nil` to keep the current user (group-only drop).
    public var uid: uid_t?
    /// The group id to switch to.
    public var gid: gid_t
    /// The user's name, used with `initgroups` to set its supplementary groups; `nil` for a
    /// numeric user without a passwd entry, or a group-only drop (supplementary groups are then
    /// just `gid`).
    public var userName: String?

    /// Makes credentials from resolved ids.
    public init(uid: uid_t?, gid: gid_t, userName: String?) {
        self.uid = uid
        self.gid = gid
        self.userName = userName
    }
}

/// Privilege drop, in twistd's order: supplementary groups, group, user, then a check.
///
/// Do everything that needs root first (bind ports, take the pidfile, open the log file), then
/// ``drop(to:)``. Under systemd prefer `User=`/`Group=` in the unit.
public enum Privileges {
    /// A passwd entry's essentials.
    public struct UserEntry: Equatable, Sendable {
        public var name: String
        public var uid: uid_t
        public var gid: gid_t
    }

    /// Looks up a user by name, or by number when `nameOrID` is all digits (`getpwnam_r`,
    /// `getpwuid_r`).
    ///
    /// - Returns: the entry, or `nil` when there is none.
    /// - Throws: ``PrivilegeError/lookupFailed(_:)`` when the database cannot be read.
    public static func lookupUser(_ nameOrID: String) throws(PrivilegeError) -> UserEntry? {
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var size = max(Int(sysconf(Int32(_SC_GETPW_R_SIZE_MAX))), 1024)
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let rc: Int32 = buffer.withUnsafeMutableBufferPointer { buf in
                if let id = uid_t(nameOrID) {
                    return getpwuid_r(id, &pwd, buf.baseAddress!, buf.count, &result)
                }
                return getpwnam_r(nameOrID, &pwd, buf.baseAddress!, buf.count, &result)
            }
            if rc == ERANGE, size < 1 << 20 {
                size *= 4
                continue
            }
            if rc != 0, rc != ENOENT, rc != ESRCH, rc != EBADF, rc != EPERM {
                throw .lookupFailed(SystemError("getpwnam_r \(nameOrID)", errno: rc))
            }
            guard result != nil else { return nil }
            return UserEntry(name: String(cString: pwd.pw_name), uid: pwd.pw_uid, gid: pwd.pw_gid)
        }
    }

    /// Looks up a group id by name, or by number when `nameOrID` is all digits (`getgrnam_r`,
    /// `getgrgid_r`).
    ///
    /// - Returns: the gid, or `nil` when there is no such group.
    /// - Throws: ``PrivilegeError/lookupFailed(_:)`` when the database cannot be read.
    public static func lookupGroup(_ nameOrID: String) throws(PrivilegeError) -> gid_t? {
        var grp = group()
        var result: UnsafeMutablePointer<group>?
        var size = max(Int(sysconf(Int32(_SC_GETGR_R_SIZE_MAX))), 1024)
        while true {
            var buffer = [CChar](repeating: 0, count: size)
            let rc: Int32 = buffer.withUnsafeMutableBufferPointer { buf in
                if let id = gid_t(nameOrID) {
                    return getgrgid_r(id, &grp, buf.baseAddress!, buf.count, &result)
                }
                return getgrnam_r(nameOrID, &grp, buf.baseAddress!, buf.count, &result)
            }
            if rc == ERANGE, size < 1 << 20 {
                size *= 4
                continue
            }
            if rc != 0, rc != ENOENT, rc != ESRCH, rc != EBADF, rc != EPERM {
                throw .lookupFailed(SystemError("getgrnam_r \(nameOrID)", errno: rc))
            }
            guard result != nil else { return nil }
            return grp.gr_gid
        }
    }

    /// Resolves `--user`/`--group` values (names or numbers).
    ///
    /// A user alone brings its primary group (as twistd does). A numeric user with no passwd
    /// entry is accepted only with a group. A numeric group is accepted even without a group
    /// entry.
    ///
    /// - Returns: the credentials, or `nil` when neither was given.
    /// - Throws: ``PrivilegeError/unknownUser(_:)``, ``PrivilegeError/unknownGroup(_:)``,
    ///   ``PrivilegeError/lookupFailed(_:)``.
    public static func resolve(user: String?, group: String?) throws(PrivilegeError) -> Credentials? {
        let user = user.flatMap { $0.isEmpty ? nil : $0 }
        let group = group.flatMap { $0.isEmpty ? nil : $0 }
        guard user != nil || group != nil else { return nil }
        var gid: gid_t?
        if let group {
            if let found = try lookupGroup(group) {
                gid = found
            } else if let numeric = gid_t(group) {
                gid = numeric
            } else {
                throw .unknownGroup(group)
            }
        }
        guard let user else { return Credentials(uid: nil, gid: gid!, userName: nil) }
        if let entry = try lookupUser(user) {
            return Credentials(uid: entry.uid, gid: gid ?? entry.gid, userName: entry.name)
        }
        if let numeric = uid_t(user), let gid {
            return Credentials(uid: numeric, gid: gid, userName: nil)
        }
        throw .unknownUser(user)
    }

    /// Switches the process to `credentials`: `initgroups` (or `setgroups` with just the gid),
    /// `setgid`, `setuid`, then checks that `setuid(0)` now fails.
    ///
    /// Affects the whole process irreversibly. Never call it from tests.
    ///
    /// - Throws: ``PrivilegeError/notPermitted(_:)`` (not root),
    ///   ``PrivilegeError/stillPrivileged``.
    public static func drop(to credentials: Credentials) throws(PrivilegeError) {
        if let name = credentials.userName {
            if initgroups(name, credentials.gid) != 0 { throw .notPermitted(.current("initgroups \(name)")) }
        } else {
            var groups = [credentials.gid]
            if setgroups(1, &groups) != 0 { throw .notPermitted(.current("setgroups \(credentials.gid)")) }
        }
        if setgid(credentials.gid) != 0 { throw .notPermitted(.current("setgid \(credentials.gid)")) }
        guard let uid = credentials.uid else { return }
        if setuid(uid) != 0 { throw .notPermitted(.current("setuid \(uid)")) }
        if uid != 0, setuid(0) == 0 { throw .stillPrivileged }
    }
}
