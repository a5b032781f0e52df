import Glibc
import Testing

@testable import XformDaemon
import XformReactor

@Suite("Privileges")
struct PrivilegesTests {
    @Test("Users resolve by name or number, bringing their primary group")
    func users() throws {
        #expect(try Privileges.lookupUser("root") == Privileges.UserEntry(name: "root", uid: 0, gid: 0))
        #expect(try Privileges.lookupUser("0")?.name == "root")
        #expect(try Privileges.lookupUser("no-such-user-xform") == nil)
        #expect(try Privileges.resolve(user: "root", group: nil) == Credentials(uid: 0, gid: 0, userName: "root"))
    }

    @Test("Groups resolve by name or number; a numeric group needs no entry")
    func groups() throws {
        #expect(try Privileges.lookupGroup("root") == 0)
        #expect(try Privileges.lookupGroup("0") == 0)
        #expect(try Privileges.lookupGroup("no-such-group-xform") == nil)
        #expect(try Privileges.resolve(user: nil, group: "root") == Credentials(uid: nil, gid: 0, userName: nil))
        #expect(try Privileges.resolve(user: "root", group: "4242420") == Credentials(uid: 0, gid: 4_242_420, userName: "root"))
    }

    @Test("Unknown users and groups fail with EX_NOUSER (67)")
    func unknown() {
        #expect(throws: PrivilegeError.unknownUser("no-such-user-xform")) { try Privileges.resolve(user: "no-such-user-xform", group: nil) }
        #expect(throws: PrivilegeError.unknownGroup("no-such-group-xform")) { try Privileges.resolve(user: "root", group: "no-such-group-xform") }
        #expect(PrivilegeError.unknownUser("x").exitStatus == .noUser)
        #expect(PrivilegeError.unknownGroup("x").exitStatus == .noUser)
        #expect(PrivilegeError.unknownUser("bob").description == "unknown user 'bob'")
    }

    @Test("A numeric user without a passwd entry needs a group")
    func numericUser() throws {
        #expect(throws: PrivilegeError.unknownUser("4242421")) { try Privileges.resolve(user: "4242421", group: nil) }
        #expect(try Privileges.resolve(user: "4242421", group: "0") == Credentials(uid: 4_242_421, gid: 0, userName: nil))
    }

    @Test("No user and no group (or empty ones) means no drop")
    func nothing() throws {
        #expect(try Privileges.resolve(user: nil, group: nil) == nil)
        #expect(try Privileges.resolve(user: "", group: "") == nil)
    }

    @Test("Refused and incomplete drops fail with EX_NOPERM (77) and hint at root")
    func noPermissionStatus() {
        let e = PrivilegeError.notPermitted(SystemError("setgroups 65534", errno: EPERM))
        #expect(e.exitStatus == .noPermission)
        #expect(e.description == "cannot change user or group: setgroups 65534: Operation not permitted (are you root?)")
        #expect(PrivilegeError.stillPrivileged.exitStatus == .noPermission)
    }

    @Test(
        "Dropping privileges without being root is refused with EX_NOPERM",
        .enabled(if: getuid() != 0, "runs only as non-root: as root it would really change this test process's user"))
    func dropAsNonRoot() {
        #expect(throws: PrivilegeError.self) {
            try Privileges.drop(to: Credentials(uid: 65534, gid: 65534, userName: nil))
        }
    }
}
