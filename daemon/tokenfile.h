/* SPDX-License-Identifier: MIT */
/*
 * tokenfile.h: a token written to a file for SDKs that read one
 * (AZURE_FEDERATED_TOKEN_FILE, a Google external_account credential_source,
 * a raw access token).
 *
 * A reader never sees a partial file: every write goes to a fresh temporary
 * file in the same directory, which is given its group and mode, filled,
 * fsync'ed and renamed over the target, and the directory is fsync'ed so the
 * rename survives a crash. The bytes are written as given: no newline is
 * added, because Python's and Go's Azure SDKs and google-auth-library do not
 * trim one.
 *
 * The path is opened one component at a time from "/" without following any
 * symbolic link, so no link anywhere in the path can redirect a write (or a
 * removal, which runs as the daemon's user and possibly as root). Before each
 * write the directory must be owned by the daemon's user or root and must not
 * be writable by group or others unless it is sticky (like /tmp): otherwise
 * another user could replace or read the token. A symbolic link at the target
 * itself is harmless: rename replaces the link and never follows it.
 *
 * The directory is looked up again on every write rather than held open, so
 * a directory that was removed and recreated (a restarted RuntimeDirectory=)
 * is written to, not an unlinked one, and every write re-checks its safety.
 */
#ifndef FT_TOKENFILE_H
#define FT_TOKENFILE_H

#include <time.h>

#include "config.h"

struct tokenfile;

/*
 * Resolve `sink` once, at config load: normalise the path (it must be
 * absolute, without "." or ".." components), resolve the group (a name, or
 * a number taken as a gid without lookup; NULL means the daemon's effective
 * group) and check the directory now, so a mistake is reported at start
 * rather than at the first token. The mode is applied exactly, whatever the
 * umask; it may hold only read and write bits.
 *
 * Unless the daemon runs as root, it must be a member of the group: chown
 * would refuse at every write otherwise, and the diagnosis says how to fix it.
 */
int tokenfile_new(const struct ft_file_sink *sink, struct tokenfile **ret, struct ft_diag *diag);

/*
 * Replace the file's content atomically with `data` (no trailing newline is
 * added). On any failure the previous file is left as it was and no
 * temporary file is left behind; diag names the path and what to do. The
 * caller owns `data` and wipes it as it sees fit.
 */
int tokenfile_write(struct tokenfile *f, const void *data, size_t len, struct ft_diag *diag);

/*
 * Remove the file (the token was dropped at expiry, or at shutdown). A file
 * or directory that is already gone is success. The ownership and mode
 * checks of tokenfile_write do not apply: removing a token is never less
 * safe than leaving it, even in a directory that became unsafe.
 */
int tokenfile_remove(struct tokenfile *f, struct ft_diag *diag);

/*
 * Remove what an interrupted write (a crash, a kill -9, power loss between
 * create and rename) left next to the file: the daemon's own regular files
 * named as its temporary files are, last modified before `older_than`, so a
 * write in progress elsewhere is never touched. They may hold a token.
 * Returns how many were removed, or -errno with diag.
 */
int tokenfile_sweep(struct tokenfile *f, time_t older_than, struct ft_diag *diag);

/* The normalised absolute path, for log lines. */
const char *tokenfile_path(const struct tokenfile *f);

/* Frees the object; the file stays where it is. Accepts NULL. */
void tokenfile_free(struct tokenfile *f);

#endif
