// `edgemq passwd`: manages Mosquitto password files, mirroring mosquitto_passwd 2.0.
//
//   edgemq passwd [-c | -D] [-b] [-I ITERATIONS] FILE USERNAME [PASSWORD]
//   edgemq passwd [-I ITERATIONS] -U FILE
//
//   -c  create FILE (replacing any) with USERNAME only
//   -D  delete USERNAME from FILE
//   -b  batch: PASSWORD comes from the command line; otherwise it is read twice from
//       the terminal with echo off, or once (one line) from `in` when that is not the
//       process's terminal
//   -I  PBKDF2 iterations for new hashes (default 101, as mosquitto_passwd)
//   -U  hash, in place, the plain-text passwords of FILE
//   -H sha512-pbkdf2 is accepted for scripts written for mosquitto_passwd; -H sha512 is
//   refused ($6$ hashes are read, never written).
//
// Without -c, FILE must exist; other users' lines, comments and blank lines are kept as
// they are. A changed file is written to a temporary file beside it (mode 0600),
// flushed to disk and renamed over FILE, so a crash leaves the old or the new file and a
// running broker never reads half of one. A symbolic link FILE is followed.
//
// Differences from mosquitto_passwd: -U leaves lines that already hold a valid $6$/$7$
// hash alone (mosquitto_passwd would hash the hash), lines it cannot read stop it with
// "FILE:LINE: why" instead of "Corrupt password file", empty passwords and user names
// that start with '#' (a comment for both readers) or with a blank are refused.
//
// Exit status: 0 done, 1 error (message on `err`), 2 bad command line (usage on `err`).
// `argv[0]` is "passwd". Not thread-safe when it reads a password from the terminal
// (it changes the terminal's echo and installs SIGINT/SIGTERM handlers while it does).
#pragma once

#include <iosfwd>

namespace edgemq::auth {

int run_passwd_command(int argc, const char* const* argv, std::istream& in, std::ostream& out,
                       std::ostream& err);

}  // namespace edgemq::auth
