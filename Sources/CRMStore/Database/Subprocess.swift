import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a program and waits for it, with standard input from /dev/null and output appended to a file.
enum Subprocess {
  struct SpawnFailure: Error, CustomStringConvertible {
    var program: String
    var code: Int32
    var description: String { "could not start \(program) (error \(code))" }
  }

  /// Runs `argv` (the program's absolute path first) and returns its exit status.
  static func run(_ argv: [String], outputPath: String) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let cArguments = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    var pid: pid_t = 0
    let code = posix_spawn(&pid, argv[0], &actions, nil, cArguments, environ)
    guard code == 0 else { throw SpawnFailure(program: argv[0], code: code) }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
      if errno != EINTR { throw SpawnFailure(program: argv[0], code: errno) }
    }
    // WIFEXITED / WEXITSTATUS, spelled out: Swift does not import the macros.
    if status & 0x7f == 0 { return (status >> 8) & 0xff }
    return 128 + (status & 0x7f)
  }
}
