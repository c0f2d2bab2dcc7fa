/* SPDX-License-Identifier: MIT */
#include "tokenfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Random bytes in a temporary file's name, printed as twice as many hex digits. */
#define TEMP_RANDOM_BYTES 8
/* ".NAME." + hex digits must fit in NAME_MAX: a longer NAME is cut in the temporary name only. */
#define TEMP_NAME_KEEP (NAME_MAX - 2 - 2 * TEMP_RANDOM_BYTES)
/* O_EXCL collisions with 64 random bits mean someone is guessing along: give up after a few. */
#define TEMP_ATTEMPTS 16
/* getgrnam_r's buffer grows on ERANGE up to this (NSS groups with many members). */
#define GROUP_BUF_MAX (1024 * 1024)

struct tokenfile {
        char *path;            /* normalised: "/a/b/name" */
        char *dir;             /* "/a/b", or "/" */
        const char *name;      /* the last component, inside `path` */
        mode_t mode;
        gid_t gid;
        char *group;           /* as configured, or the gid in decimal: for messages */
};

static int fail(struct ft_diag *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like ft_diag_set, but returns the -errno that explains the failure. */
static int fail(struct ft_diag *d, int err, const char *fmt, ...)
{
        va_list ap;

        if (d) {
                va_start(ap, fmt);
                vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
                va_end(ap);
        }
        return -err;
}

/*
 * "/run//fedtokend/azure.jwt" → "/run/fedtokend/azure.jwt". "." and ".."
 * are refused rather than resolved: ".." after a symbolic link means
 * something else than it reads, and the path in messages should be the path
 * that is written.
 */
static int normalise_path(const char *path, char **ret, struct ft_diag *diag)
{
        size_t n = path ? strlen(path) : 0;
        const char *p = path;
        char *out, *o;

        if (n == 0 || path[0] != '/' || n >= PATH_MAX)
                return fail(diag, EINVAL, "token file path '%s' is not an absolute path of at most %d bytes",
                            path ? path : "", PATH_MAX - 1);
        out = o = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        while (*p) {
                size_t len;

                p += strspn(p, "/");
                len = strcspn(p, "/");
                if (len == 0)
                        break;
                if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.')) {
                        free(out);
                        return fail(diag, EINVAL, "token file path %s has a '.' or '..' component: write it "
                                    "without them", path);
                }
                if (len > NAME_MAX) {
                        free(out);
                        return fail(diag, ENAMETOOLONG, "token file path %s has a component longer than %d bytes",
                                    path, NAME_MAX);
                }
                *o++ = '/';
                memcpy(o, p, len);
                o += len;
                p += len;
        }
        *o = '\0';
        if (o == out || path[n - 1] == '/') {
                free(out);
                return fail(diag, EINVAL, "token file path %s names a directory, not a file", path);
        }
        *ret = out;
        return 0;
}

static bool is_number(const char *s)
{
        return s[0] && strspn(s, "0123456789") == strlen(s);
}

/* A number is a gid as it stands, so a group that NSS cannot list still works. */
static int resolve_group(const char *group, gid_t *ret, struct ft_diag *diag)
{
        struct group gr, *found = NULL;
        size_t size = 1024;
        char *buf = NULL;
        int r;

        if (is_number(group)) {
                unsigned long long v;

                errno = 0;
                v = strtoull(group, NULL, 10);
                if (errno || v >= (gid_t)-1)
                        return fail(diag, ERANGE, "group %s is not a valid gid", group);
                *ret = (gid_t)v;
                return 0;
        }
        for (;;) {
                char *nb = realloc(buf, size);

                if (!nb) {
                        free(buf);
                        return -ENOMEM;
                }
                buf = nb;
                r = getgrnam_r(group, &gr, buf, size, &found);
                if (r != ERANGE || size >= GROUP_BUF_MAX)
                        break;
                size *= 2;
        }
        if (r == 0 && found)
                *ret = found->gr_gid;
        free(buf);
        if (r != 0)
                return fail(diag, r, "cannot look up group '%s': %s", group, strerror(r));
        if (!found)
                return fail(diag, ENOENT, "group '%s' does not exist: create it or name another in file_group",
                            group);
        return 0;
}

/*
 * Whether chown to `gid` will be allowed. Root (CAP_CHOWN) may give a file
 * to any group; anyone else only to a group they are in.
 */
static int may_use_group(gid_t gid, bool *ret)
{
        gid_t *list;
        int n;

        if (geteuid() == 0 || gid == getegid()) {
                *ret = true;
                return 0;
        }
        n = getgroups(0, NULL);
        if (n < 0)
                return -errno;
        list = calloc((size_t)n + 1, sizeof(*list));
        if (!list)
                return -ENOMEM;
        n = getgroups(n, list);
        if (n < 0) {
                int e = errno;
                free(list);
                return -e;
        }
        *ret = false;
        for (int i = 0; i < n; i++)
                if (list[i] == gid)
                        *ret = true;
        free(list);
        return 0;
}

/* Explain why component `comp` of `f->dir` (ending at `end`) could not be opened under `parent`. */
static int explain_open_failure(const struct tokenfile *f, int parent, const char *comp, const char *end, int err,
                                struct ft_diag *diag)
{
        int prefix = (int)(end - f->dir);
        struct stat st;

        if (err == ENOENT)
                return fail(diag, err, "cannot write %s: directory %.*s does not exist: create it (for example "
                            "with RuntimeDirectory= or StateDirectory= in the unit)", f->path, prefix, f->dir);
        if ((err == ELOOP || err == ENOTDIR) && fstatat(parent, comp, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (S_ISLNK(st.st_mode))
                        return fail(diag, ELOOP, "cannot write %s: %.*s is a symbolic link, and fedtokend "
                                    "follows none in the path of a token file: configure the real path",
                                    f->path, prefix, f->dir);
                return fail(diag, ENOTDIR, "cannot write %s: %.*s is not a directory", f->path, prefix, f->dir);
        }
        return fail(diag, err, "cannot write %s: cannot open directory %.*s: %s", f->path, prefix, f->dir,
                    strerror(err));
}

/*
 * Open the directory one component at a time with O_NOFOLLOW. Components
 * before the last are opened with O_PATH, which needs only search
 * permission; the directory itself is opened for reading so it can be
 * fsync'ed.
 */
static int open_dir(const struct tokenfile *f, int *ret_fd, struct ft_diag *diag)
{
        const char *p = f->dir + 1;
        int fd;

        fd = open("/", (*p ? O_PATH : O_RDONLY) | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                return fail(diag, e, "cannot write %s: cannot open /: %s", f->path, strerror(e));
        }
        while (*p) {
                size_t len = strcspn(p, "/");
                bool last = p[len] == '\0';
                char comp[NAME_MAX + 1];
                int next;

                /* normalise_path capped every component at NAME_MAX. */
                memcpy(comp, p, len);
                comp[len] = '\0';
                next = openat(fd, comp, (last ? O_RDONLY : O_PATH) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (next < 0) {
                        int r = explain_open_failure(f, fd, comp, p + len, errno, diag);
                        close(fd);
                        return r;
                }
                close(fd);
                fd = next;
                p += last ? len : len + 1;
        }
        *ret_fd = fd;
        return 0;
}

/*
 * Anyone who may write the directory may replace the token or plant a file
 * of their own under its name. The sticky bit (like /tmp) stops them from
 * touching entries they do not own; the ones we create are ours.
 */
static int check_dir(const struct tokenfile *f, int dfd, struct ft_diag *diag)
{
        uid_t euid = geteuid();
        struct stat st;

        if (fstat(dfd, &st) < 0) {
                int e = errno;
                return fail(diag, e, "cannot write %s: cannot stat %s: %s", f->path, f->dir, strerror(e));
        }
        if (st.st_uid != euid && st.st_uid != 0)
                return fail(diag, EPERM, "refusing to write %s: directory %s is owned by uid %u, not by the "
                            "daemon's user (uid %u) or root: chown %u %s, or choose another directory",
                            f->path, f->dir, (unsigned)st.st_uid, (unsigned)euid, (unsigned)euid, f->dir);
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
                bool by_group = st.st_mode & S_IWGRP, by_others = st.st_mode & S_IWOTH;

                return fail(diag, EPERM, "refusing to write %s: directory %s (mode %04o) is writable by %s, "
                            "who could replace the token with their own: chmod %s %s", f->path, f->dir,
                            (unsigned)(st.st_mode & 07777),
                            by_group && by_others ? "its group and others" : by_group ? "its group" : "others",
                            by_group && by_others ? "go-w" : by_group ? "g-w" : "o-w", f->dir);
        }
        return 0;
}

static int open_checked_dir(const struct tokenfile *f, int *ret_fd, struct ft_diag *diag)
{
        int fd, r;

        r = open_dir(f, &fd, diag);
        if (r < 0)
                return r;
        r = check_dir(f, fd, diag);
        if (r < 0) {
                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* How much of NAME a temporary name ".NAME.<hex digits>" keeps: all of it, unless that would pass NAME_MAX. */
static int temp_name_keep(const struct tokenfile *f)
{
        size_t n = strlen(f->name);

        return n > TEMP_NAME_KEEP ? TEMP_NAME_KEEP : (int)n;
}

/*
 * Create ".NAME.<16 hex digits>" next to the target, mode 0600 until it has
 * its group: a reader never gets a chance to open it under a wider mode
 * with the wrong group. O_EXCL refuses an existing name, symbolic links
 * included.
 */
static int create_temp(const struct tokenfile *f, int dfd, char tmp[static NAME_MAX + 1], int *ret_fd,
                       struct ft_diag *diag)
{
        int name_len = temp_name_keep(f);

        for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
                uint8_t rnd[TEMP_RANDOM_BYTES];
                ssize_t got;
                int n, fd;

                do
                        got = getrandom(rnd, sizeof(rnd), 0);
                while (got < 0 && errno == EINTR);
                if (got != (ssize_t)sizeof(rnd))
                        return fail(diag, got < 0 ? errno : EIO, "cannot write %s: getrandom failed", f->path);
                n = snprintf(tmp, NAME_MAX + 1, ".%.*s.", name_len, f->name);
                for (size_t i = 0; i < sizeof(rnd); i++)
                        n += snprintf(tmp + n, (size_t)(NAME_MAX + 1 - n), "%02x", rnd[i]);
                fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
                if (fd >= 0) {
                        *ret_fd = fd;
                        return 0;
                }
                if (errno == EACCES)
                        return fail(diag, EACCES, "cannot write %s: the daemon's user (uid %u) may not create "
                                    "files in %s: chown %u %s", f->path, (unsigned)geteuid(), f->dir,
                                    (unsigned)geteuid(), f->dir);
                if (errno != EEXIST) {
                        int e = errno;
                        return fail(diag, e, "cannot write %s: cannot create a temporary file in %s: %s",
                                    f->path, f->dir, strerror(e));
                }
        }
        return fail(diag, EEXIST, "cannot create a temporary file in %s: %d random names were taken", f->dir,
                    TEMP_ATTEMPTS);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Group, mode, content, fsync, close: the temporary file is complete or this fails. Closes `fd` always. */
static int fill_temp(const struct tokenfile *f, int fd, const void *data, size_t len, struct ft_diag *diag)
{
        int r;

        if (fchown(fd, (uid_t)-1, f->gid) < 0) {
                r = -errno;
                close(fd);
                if (r == -EPERM)
                        return fail(diag, EPERM, "cannot give %s to group %s: the daemon's user is not a member "
                                    "of it: add it (SupplementaryGroups=%s in the unit)", f->path, f->group,
                                    f->group);
                return fail(diag, -r, "cannot give %s to group %s: %s", f->path, f->group, strerror(-r));
        }
        /* Explicitly: the umask must not decide who can read a token. */
        if (fchmod(fd, f->mode) < 0) {
                r = -errno;
                close(fd);
                return fail(diag, -r, "cannot set mode %04o on a temporary file in %s: %s", (unsigned)f->mode,
                            f->dir, strerror(-r));
        }
        r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                return fail(diag, -r, "cannot write a temporary file in %s: %s", f->dir, strerror(-r));
        }
        /* Linux closes the descriptor even when close fails; EINTR there loses no data. */
        if (close(fd) < 0 && errno != EINTR) {
                int e = errno;
                return fail(diag, e, "cannot write a temporary file in %s: %s", f->dir, strerror(e));
        }
        return 0;
}

int tokenfile_new(const struct ft_file_sink *sink, struct tokenfile **ret, struct ft_diag *diag)
{
        struct tokenfile *f;
        char *slash;
        bool member = false;
        int dfd, r;

        if (!sink || !sink->path)
                return fail(diag, EINVAL, "no token file path");
        if (sink->mode & ~0666u)
                return fail(diag, EINVAL, "token file %s: mode %04o may hold only read and write bits", sink->path,
                            sink->mode);
        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->mode = (mode_t)sink->mode;
        r = normalise_path(sink->path, &f->path, diag);
        if (r < 0)
                goto fail;
        slash = strrchr(f->path, '/');
        f->name = slash + 1;
        f->dir = slash == f->path ? strdup("/") : ft_strndup(f->path, (size_t)(slash - f->path));
        if (!f->dir) {
                r = -ENOMEM;
                goto fail;
        }
        if (sink->group) {
                r = resolve_group(sink->group, &f->gid, diag);
                if (r < 0)
                        goto fail;
                f->group = strdup(sink->group);
        } else {
                char num[16];

                f->gid = getegid();
                snprintf(num, sizeof(num), "%u", (unsigned)f->gid);
                f->group = strdup(num);
        }
        if (!f->group) {
                r = -ENOMEM;
                goto fail;
        }
        r = may_use_group(f->gid, &member);
        if (r < 0)
                goto fail;
        if (!member) {
                r = fail(diag, EPERM, "token file %s: the daemon's user is not a member of group %s, so it cannot "
                         "give the file to it: add it (SupplementaryGroups=%s in the unit)", f->path, f->group,
                         f->group);
                goto fail;
        }
        r = open_checked_dir(f, &dfd, diag);
        if (r < 0)
                goto fail;
        close(dfd);
        *ret = f;
        return 0;
fail:
        tokenfile_free(f);
        return r;
}

int tokenfile_write(struct tokenfile *f, const void *data, size_t len, struct ft_diag *diag)
{
        char tmp[NAME_MAX + 1];
        int dfd, fd = -1, r;

        r = open_checked_dir(f, &dfd, diag);
        if (r < 0)
                return r;
        r = create_temp(f, dfd, tmp, &fd, diag);
        if (r < 0)
                goto out;
        r = fill_temp(f, fd, data, len, diag);
        if (r < 0) {
                (void)unlinkat(dfd, tmp, 0);
                goto out;
        }
        /* rename replaces whatever has the name, a symbolic link included, and never follows it. */
        if (renameat(dfd, tmp, dfd, f->name) < 0) {
                int e = errno;

                (void)unlinkat(dfd, tmp, 0);
                if (e == EISDIR)
                        r = fail(diag, e, "cannot write %s: it is a directory", f->path);
                else if (e == EPERM || e == EACCES)
                        r = fail(diag, e, "cannot replace %s: %s (in a sticky directory such as /tmp only its "
                                 "owner may replace a file: remove it)", f->path, strerror(e));
                else
                        r = fail(diag, e, "cannot replace %s: %s", f->path, strerror(e));
                goto out;
        }
        /* The new name is visible now; the fsync makes it survive a crash (a no-op on tmpfs). */
        if (fsync(dfd) < 0) {
                int e = errno;
                r = fail(diag, e, "wrote %s but could not sync directory %s: %s", f->path, f->dir, strerror(e));
        }
out:
        close(dfd);
        return r;
}

int tokenfile_remove(struct tokenfile *f, struct ft_diag *diag)
{
        int dfd, r;

        /* No check_dir: see the header. open_dir still follows no symbolic link. */
        r = open_dir(f, &dfd, diag);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = 0;
        if (unlinkat(dfd, f->name, 0) < 0 && errno != ENOENT) {
                int e = errno;
                r = fail(diag, e, "cannot remove %s: %s", f->path, strerror(e));
        }
        close(dfd);
        return r;
}

/* Whether `entry` is a name create_temp makes for this file: ".NAME." and the hex digits. */
static bool is_temp_name(const struct tokenfile *f, const char *entry)
{
        size_t name_len = (size_t)temp_name_keep(f), n = strlen(entry);

        if (n != 2 + name_len + 2 * TEMP_RANDOM_BYTES || entry[0] != '.' ||
            memcmp(entry + 1, f->name, name_len) != 0 || entry[1 + name_len] != '.')
                return false;
        for (size_t i = 2 + name_len; i < n; i++)
                if (!((entry[i] >= '0' && entry[i] <= '9') || (entry[i] >= 'a' && entry[i] <= 'f')))
                        return false;
        return true;
}

int tokenfile_sweep(struct tokenfile *f, time_t older_than, struct ft_diag *diag)
{
        struct dirent *de;
        DIR *dir;
        int dfd, lfd, r, removed = 0;

        r = open_checked_dir(f, &dfd, diag);
        if (r < 0)
                return r;
        /* fdopendir takes its descriptor: list through a copy, act through dfd. */
        lfd = dup(dfd);
        dir = lfd < 0 ? NULL : fdopendir(lfd);
        if (!dir) {
                int e = errno;

                if (lfd >= 0)
                        close(lfd);
                close(dfd);
                return fail(diag, e, "cannot list %s: %s", f->dir, strerror(e));
        }
        while ((errno = 0, de = readdir(dir)) != NULL) {
                struct stat st;

                if (!is_temp_name(f, de->d_name))
                        continue;
                /* Only our own regular files, and only ones no write can still be filling. */
                if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
                    st.st_uid != geteuid() || st.st_mtime >= older_than)
                        continue;
                if (unlinkat(dfd, de->d_name, 0) == 0)
                        removed++;
        }
        closedir(dir);
        close(dfd);
        return removed;
}

const char *tokenfile_path(const struct tokenfile *f)
{
        return f->path;
}

void tokenfile_free(struct tokenfile *f)
{
        if (!f)
                return;
        free(f->path);
        free(f->dir);
        free(f->group);
        free(f);
}
