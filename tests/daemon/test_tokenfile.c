/* SPDX-License-Identifier: MIT */
/*
 * test_tokenfile: daemon/tokenfile.c against a real file system, in a fresh
 * directory under $TMPDIR. Some cases need root (chown to another uid or
 * gid, running as another user); they say so and are skipped otherwise.
 */
#include "tokenfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

/* The uid and gid of "nobody" on Debian: another owner for the root-only cases. */
#define OTHER_ID 65534

static char base[PATH_MAX];

static void format_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A path that does not fit is a broken test setup, not a case to carry on with. */
static void format_path(char *buf, size_t size, const char *fmt, ...)
{
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= size) {
                fprintf(stderr, "test path too long\n");
                abort();
        }
}

/* base/rel, in a static rotation of buffers so a few can be alive at once. */
static char *at(const char *rel)
{
        static char bufs[8][PATH_MAX];
        static unsigned next;
        char *b = bufs[next++ % FT_ELEMENTSOF(bufs)];

        format_path(b, PATH_MAX, "%s/%s", base, rel);
        return b;
}

static void make_dir(const char *rel, mode_t mode)
{
        CHECK(mkdir(at(rel), 0700) == 0);
        /* chmod, not mkdir's mode: the umask must not decide the test either. */
        CHECK(chmod(at(rel), mode) == 0);
}

static void put_file(const char *path, const char *content)
{
        FILE *f = fopen(path, "w");

        CHECK(f != NULL);
        if (f) {
                fputs(content, f);
                fclose(f);
        }
}

static struct tokenfile *open_sink(const char *path, unsigned mode, const char *group)
{
        struct ft_file_sink sink = { .path = (char *)path, .mode = mode, .group = (char *)group };
        struct ft_diag diag = { 0 };
        struct tokenfile *f = NULL;
        int r;

        r = tokenfile_new(&sink, &f, &diag);
        if (r < 0)
                fprintf(stderr, "tokenfile_new(%s): %d: %s\n", path, r, diag.msg);
        CHECK_INT(r, 0);
        return f;
}

/* tokenfile_new's error, with its message in `diag`. */
static int new_fails(const char *path, unsigned mode, const char *group, struct ft_diag *diag)
{
        struct ft_file_sink sink = { .path = (char *)path, .mode = mode, .group = (char *)group };
        struct tokenfile *f = NULL;
        int r;

        memset(diag, 0, sizeof(*diag));
        r = tokenfile_new(&sink, &f, diag);
        CHECK(r < 0);
        CHECK(f == NULL);
        tokenfile_free(f);
        return r;
}

static int write_str(struct tokenfile *f, const char *s, struct ft_diag *diag)
{
        return tokenfile_write(f, s, strlen(s), diag);
}

/* Entries of a directory other than "." and "..", and how many of them look like our temporary files. */
static int count_entries(const char *dir, int *ret_hidden)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        int n = 0, hidden = 0;

        if (!d)
                return -1;
        while ((e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                n++;
                if (e->d_name[0] == '.')
                        hidden++;
        }
        closedir(d);
        *ret_hidden = hidden;
        return n;
}

static void check_content(const char *path, const char *want, size_t want_len)
{
        size_t len = 0;
        char *got = test_read_file(path, &len);

        CHECK(got != NULL);
        CHECK_INT(len, want_len);
        CHECK(got && len == want_len && memcmp(got, want, want_len) == 0);
        free(got);
}

static void test_content_and_mode(void)
{
        static const char bytes[] = "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n\0tail";
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        struct stat st;
        mode_t old = umask(0);
        int hidden;

        make_dir("content", 0700);
        f = open_sink(at("content/token"), 0640, NULL);
        CHECK_STR(tokenfile_path(f), at("content/token"));
        /* Exactly the bytes given: no newline appended, an embedded one and a NUL kept. */
        CHECK_INT(tokenfile_write(f, "abc", 3, &diag), 0);
        check_content(at("content/token"), "abc", 3);
        CHECK(lstat(at("content/token"), &st) == 0 && S_ISREG(st.st_mode));
        CHECK_INT(st.st_mode & 07777, 0640);
        CHECK_INT(st.st_uid, geteuid());
        CHECK_INT(st.st_gid, getegid());
        CHECK_INT(tokenfile_write(f, bytes, sizeof(bytes) - 1, &diag), 0);
        check_content(at("content/token"), bytes, sizeof(bytes) - 1);
        tokenfile_free(f);

        /* A restrictive umask must not narrow the mode either. */
        umask(077);
        f = open_sink(at("content/token"), 0660, NULL);
        CHECK_INT(write_str(f, "second", &diag), 0);
        CHECK(stat(at("content/token"), &st) == 0);
        CHECK_INT(st.st_mode & 07777, 0660);
        check_content(at("content/token"), "second", 6);
        tokenfile_free(f);

        f = open_sink(at("content/token"), 0600, NULL);
        CHECK_INT(write_str(f, "third", &diag), 0);
        CHECK(stat(at("content/token"), &st) == 0);
        CHECK_INT(st.st_mode & 07777, 0600);
        tokenfile_free(f);
        umask(old);

        CHECK_INT(count_entries(at("content"), &hidden), 1);
        CHECK_INT(hidden, 0);
}

static void test_paths(void)
{
        struct ft_diag diag;
        struct tokenfile *f;
        char path[PATH_MAX];
        char name[NAME_MAX + 1];
        int hidden;

        make_dir("paths", 0700);
        CHECK_INT(new_fails("relative/token", 0600, NULL, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "absolute");
        CHECK_INT(new_fails("", 0600, NULL, &diag), -EINVAL);
        CHECK_INT(new_fails("/", 0600, NULL, &diag), -EINVAL);
        CHECK_INT(new_fails(at("paths/"), 0600, NULL, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "directory");
        CHECK_INT(new_fails(at("paths/../paths/token"), 0600, NULL, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "'..'");
        CHECK_INT(new_fails(at("paths/./token"), 0600, NULL, &diag), -EINVAL);
        CHECK_INT(new_fails(at("paths/token"), 0700, NULL, &diag), -EINVAL);
        CHECK_CONTAINS(diag.msg, "0700");
        CHECK_INT(new_fails(at("paths/token"), 04600, NULL, &diag), -EINVAL);

        /* Repeated slashes are folded, in the path written and in messages. */
        format_path(path, sizeof(path), "/%s//paths///token", base);
        f = open_sink(path, 0600, NULL);
        CHECK_STR(tokenfile_path(f), at("paths/token"));
        CHECK_INT(write_str(f, "x", &diag), 0);
        check_content(at("paths/token"), "x", 1);
        tokenfile_free(f);

        /* A name too long to prefix and suffix in full still gets a temporary file. */
        memset(name, 'n', NAME_MAX);
        name[NAME_MAX] = '\0';
        format_path(path, sizeof(path), "%s/paths/%s", base, name);
        f = open_sink(path, 0600, NULL);
        CHECK_INT(write_str(f, "long", &diag), 0);
        check_content(path, "long", 4);
        tokenfile_free(f);
        CHECK_INT(count_entries(at("paths"), &hidden), 2);
        CHECK_INT(hidden, 0);

        tokenfile_free(NULL);
}

static void test_directory_checks(void)
{
        struct ft_diag diag;
        struct tokenfile *f;
        int hidden;

        /* Writable by others, not sticky: anyone could swap the token. */
        make_dir("open", 0777);
        CHECK_INT(new_fails(at("open/token"), 0600, NULL, &diag), -EPERM);
        CHECK_CONTAINS(diag.msg, at("open"));
        CHECK_CONTAINS(diag.msg, "chmod go-w");
        CHECK(chmod(at("open"), 0757) == 0);
        CHECK_INT(new_fails(at("open/token"), 0600, NULL, &diag), -EPERM);
        CHECK_CONTAINS(diag.msg, "chmod o-w");
        CHECK(chmod(at("open"), 0770) == 0);
        CHECK_INT(new_fails(at("open/token"), 0600, NULL, &diag), -EPERM);
        CHECK_CONTAINS(diag.msg, "chmod g-w");

        /* Sticky, like /tmp: others may not touch what is ours. */
        CHECK(chmod(at("open"), 01777) == 0);
        f = open_sink(at("open/token"), 0600, NULL);
        CHECK_INT(write_str(f, "sticky", &diag), 0);
        tokenfile_free(f);

        /* The checks run again before every write, not only at load. */
        make_dir("later", 0700);
        f = open_sink(at("later/token"), 0600, NULL);
        CHECK(chmod(at("later"), 0703) == 0);
        CHECK_INT(write_str(f, "no", &diag), -EPERM);
        CHECK_CONTAINS(diag.msg, "chmod o-w");
        CHECK_INT(count_entries(at("later"), &hidden), 0);
        /* Then the directory is swapped for a symbolic link to a safe one. */
        make_dir("later-real", 0700);
        CHECK(rename(at("later"), at("later-old")) == 0);
        CHECK(symlink(at("later-real"), at("later")) == 0);
        CHECK_INT(write_str(f, "no", &diag), -ELOOP);
        CHECK_CONTAINS(diag.msg, "symbolic link");
        CHECK_INT(count_entries(at("later-real"), &hidden), 0);
        tokenfile_free(f);

        /* No directory: say which one is missing. */
        CHECK_INT(new_fails(at("missing/sub/token"), 0600, NULL, &diag), -ENOENT);
        CHECK_CONTAINS(diag.msg, "directory ");
        CHECK_CONTAINS(diag.msg, at("missing does not exist"));

        /* A file where a directory should be. */
        put_file(at("plain"), "x");
        CHECK_INT(new_fails(at("plain/token"), 0600, NULL, &diag), -ENOTDIR);
        CHECK_CONTAINS(diag.msg, "not a directory");

        /* A symbolic link anywhere in the path, the directory itself or above it. */
        make_dir("real", 0700);
        make_dir("real/sub", 0700);
        CHECK(symlink(at("real"), at("link")) == 0);
        CHECK_INT(new_fails(at("link/token"), 0600, NULL, &diag), -ELOOP);
        CHECK_CONTAINS(diag.msg, at("link is a symbolic link"));
        CHECK_INT(new_fails(at("link/sub/token"), 0600, NULL, &diag), -ELOOP);
        CHECK_CONTAINS(diag.msg, at("link is a symbolic link"));
        CHECK(symlink("real/sub", at("rel-link")) == 0);
        CHECK_INT(new_fails(at("rel-link/token"), 0600, NULL, &diag), -ELOOP);
        CHECK_INT(count_entries(at("real/sub"), &hidden), 0);

        if (geteuid() != 0) {
                printf("SKIP: directory owned by another user (needs root)\n");
                return;
        }
        make_dir("foreign", 0700);
        CHECK(chown(at("foreign"), OTHER_ID, OTHER_ID) == 0);
        CHECK_INT(new_fails(at("foreign/token"), 0600, NULL, &diag), -EPERM);
        CHECK_CONTAINS(diag.msg, at("foreign is owned by uid 65534"));
        CHECK_CONTAINS(diag.msg, "chown 0");
}

/* A planted link at the target: rename replaces the link, the victim is not touched. */
static void test_symlink_target(void)
{
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        struct stat st;

        make_dir("plant", 0700);
        put_file(at("victim"), "precious");
        CHECK(chmod(at("victim"), 0644) == 0);
        CHECK(symlink(at("victim"), at("plant/token")) == 0);
        f = open_sink(at("plant/token"), 0600, NULL);
        CHECK_INT(write_str(f, "token", &diag), 0);
        check_content(at("victim"), "precious", 8);
        CHECK(stat(at("victim"), &st) == 0);
        CHECK_INT(st.st_mode & 07777, 0644);
        CHECK(lstat(at("plant/token"), &st) == 0 && S_ISREG(st.st_mode));
        check_content(at("plant/token"), "token", 5);

        /* Removal unlinks the name, not what a planted link points to. */
        CHECK(unlink(at("plant/token")) == 0);
        CHECK(symlink(at("victim"), at("plant/token")) == 0);
        CHECK_INT(tokenfile_remove(f, &diag), 0);
        CHECK(lstat(at("plant/token"), &st) < 0 && errno == ENOENT);
        check_content(at("victim"), "precious", 8);
        tokenfile_free(f);
}

static void test_failures_leave_nothing(void)
{
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        struct rlimit old, small = { 16, 16 };
        char big[64];
        int hidden;

        make_dir("fail", 0700);
        f = open_sink(at("fail/token"), 0600, NULL);
        CHECK_INT(write_str(f, "good", &diag), 0);

        /* The write itself fails (EFBIG past RLIMIT_FSIZE): the old content stays, no temporary file. */
        memset(big, 'B', sizeof(big));
        signal(SIGXFSZ, SIG_IGN);
        CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
        small.rlim_max = old.rlim_max;
        CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
        CHECK_INT(tokenfile_write(f, big, sizeof(big), &diag), -EFBIG);
        CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
        signal(SIGXFSZ, SIG_DFL);
        CHECK_CONTAINS(diag.msg, at("fail"));
        check_content(at("fail/token"), "good", 4);
        CHECK_INT(count_entries(at("fail"), &hidden), 1);
        CHECK_INT(hidden, 0);
        tokenfile_free(f);

        /* The rename fails: a directory sits at the target. */
        make_dir("fail/dir", 0700);
        f = open_sink(at("fail/dir"), 0600, NULL);
        CHECK(f != NULL);
        if (f)
                CHECK_INT(write_str(f, "token", &diag), -EISDIR);
        CHECK_CONTAINS(diag.msg, "is a directory");
        CHECK_INT(count_entries(at("fail"), &hidden), 2);
        CHECK_INT(hidden, 0);
        tokenfile_free(f);
}

static void test_remove(void)
{
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        struct stat st;

        make_dir("rm", 0700);
        f = open_sink(at("rm/token"), 0600, NULL);
        CHECK_INT(write_str(f, "t", &diag), 0);
        CHECK_INT(tokenfile_remove(f, &diag), 0);
        CHECK(lstat(at("rm/token"), &st) < 0 && errno == ENOENT);
        /* Already gone, and then the directory too: nothing to do. */
        CHECK_INT(tokenfile_remove(f, &diag), 0);
        CHECK(rmdir(at("rm")) == 0);
        CHECK_INT(tokenfile_remove(f, &diag), 0);

        /* The directory became a symbolic link: the same name elsewhere is left alone. */
        make_dir("rm-other", 0700);
        put_file(at("rm-other/token"), "other");
        CHECK(symlink(at("rm-other"), at("rm")) == 0);
        CHECK_INT(tokenfile_remove(f, &diag), -ELOOP);
        CHECK_CONTAINS(diag.msg, "symbolic link");
        check_content(at("rm-other/token"), "other", 5);
        tokenfile_free(f);
}

/* Set a file's modification time `age` seconds into the past. */
static void age_file(const char *path, time_t age)
{
        struct timespec ts[2] = { { .tv_sec = time(NULL) - age }, { .tv_sec = time(NULL) - age } };

        CHECK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) == 0);
}

static void test_sweep(void)
{
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        struct stat st;
        int hidden = 0;

        make_dir("sw", 0700);
        f = open_sink(at("sw/token"), 0600, NULL);
        CHECK_INT(write_str(f, "current", &diag), 0);
        /* A crashed write's leftover, old: removed. */
        put_file(at("sw/.token.0123456789abcdef"), "secret");
        age_file(at("sw/.token.0123456789abcdef"), 3600);
        /* A write in progress right now (recent): kept. */
        put_file(at("sw/.token.fedcba9876543210"), "new");
        /* Not our names: another file's temporary, wrong digits, wrong length, upper case. */
        put_file(at("sw/.other.0123456789abcdef"), "x");
        put_file(at("sw/.token.0123456789abcdeg"), "x");
        put_file(at("sw/.token.0123456789abcde"), "x");
        put_file(at("sw/.token.0123456789ABCDEF"), "x");
        put_file(at("sw/token.0123456789abcdef"), "x");
        /* A symbolic link and a directory with our name shape: never touched. */
        CHECK(symlink(at("sw/token"), at("sw/.token.1111111111111111")) == 0);
        age_file(at("sw/.token.1111111111111111"), 3600);
        CHECK(mkdir(at("sw/.token.2222222222222222"), 0700) == 0);
        age_file(at("sw/.token.2222222222222222"), 3600);
        for (const char *const *p = (const char *const[]){ "sw/.other.0123456789abcdef", "sw/.token.0123456789abcdeg",
                                                           "sw/.token.0123456789abcde", "sw/.token.0123456789ABCDEF",
                                                           "sw/token.0123456789abcdef", NULL };
             *p; p++)
                age_file(at(*p), 3600);

        CHECK_INT(tokenfile_sweep(f, time(NULL) - 60, &diag), 1);
        CHECK(lstat(at("sw/.token.0123456789abcdef"), &st) < 0 && errno == ENOENT);
        CHECK(lstat(at("sw/.token.fedcba9876543210"), &st) == 0);
        CHECK(lstat(at("sw/.token.1111111111111111"), &st) == 0 && S_ISLNK(st.st_mode));
        CHECK(lstat(at("sw/.token.2222222222222222"), &st) == 0 && S_ISDIR(st.st_mode));
        CHECK_INT(count_entries(at("sw"), &hidden), 9);
        check_content(at("sw/token"), "current", 7);
        /* Nothing more to do the second time. */
        CHECK_INT(tokenfile_sweep(f, time(NULL) - 60, &diag), 0);

        /* Someone else's file is not ours to remove (root can give it away to test this). */
        if (geteuid() == 0) {
                put_file(at("sw/.token.3333333333333333"), "theirs");
                CHECK(chown(at("sw/.token.3333333333333333"), 65534, 65534) == 0);
                age_file(at("sw/.token.3333333333333333"), 3600);
                CHECK_INT(tokenfile_sweep(f, time(NULL) - 60, &diag), 0);
                CHECK(lstat(at("sw/.token.3333333333333333"), &st) == 0);
        }
        /* A name too long to keep whole in a temporary name: its leftover is found by the cut name. */
        {
                char name[NAME_MAX + 1], leftover[NAME_MAX + 1], path[PATH_MAX];
                struct tokenfile *lf;
                size_t keep = NAME_MAX - 2 - 16;

                memset(name, 'n', NAME_MAX - 5);
                name[NAME_MAX - 5] = '\0';
                format_path(path, sizeof(path), "%s/sw/%s", base, name);
                lf = open_sink(path, 0600, NULL);
                snprintf(leftover, sizeof(leftover), ".%.*s.0123456789abcdef", (int)keep, name);
                format_path(path, sizeof(path), "%s/sw/%s", base, leftover);
                put_file(path, "secret");
                age_file(path, 3600);
                CHECK_INT(tokenfile_sweep(lf, time(NULL) - 60, &diag), 1);
                CHECK(lstat(path, &st) < 0 && errno == ENOENT);
                tokenfile_free(lf);
        }
        /* An unsafe directory is refused, as for a write. */
        CHECK(chmod(at("sw"), 0777) == 0);
        CHECK(tokenfile_sweep(f, time(NULL) - 60, &diag) < 0);
        CHECK(chmod(at("sw"), 0700) == 0);
        tokenfile_free(f);
}

static void test_groups(void)
{
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        struct group *gr;
        struct stat st;

        make_dir("grp", 0700);
        CHECK_INT(new_fails(at("grp/token"), 0640, "fedtokend-no-such-group", &diag), -ENOENT);
        CHECK_CONTAINS(diag.msg, "'fedtokend-no-such-group' does not exist");
        CHECK_INT(new_fails(at("grp/token"), 0640, "99999999999", &diag), -ERANGE);

        if (geteuid() != 0) {
                printf("SKIP: file group other than our own (needs root)\n");
                return;
        }
        f = open_sink(at("grp/token"), 0640, "65534");
        CHECK_INT(write_str(f, "g", &diag), 0);
        CHECK(stat(at("grp/token"), &st) == 0);
        CHECK_INT(st.st_gid, OTHER_ID);
        CHECK_INT(st.st_mode & 07777, 0640);
        tokenfile_free(f);

        gr = getgrgid(OTHER_ID);
        if (gr) {
                char name[64];

                snprintf(name, sizeof(name), "%s", gr->gr_name);
                f = open_sink(at("grp/token"), 0660, name);
                CHECK_INT(write_str(f, "h", &diag), 0);
                CHECK(stat(at("grp/token"), &st) == 0);
                CHECK_INT(st.st_gid, OTHER_ID);
                CHECK_INT(st.st_mode & 07777, 0660);
                tokenfile_free(f);
        } else {
                printf("SKIP: group by name (no group has gid %d here)\n", OTHER_ID);
        }

        /* No group configured: the daemon's, even in a setgid directory that would hand out its own. */
        make_dir("setgid", 0700);
        CHECK(chown(at("setgid"), 0, OTHER_ID) == 0);
        CHECK(chmod(at("setgid"), 02700) == 0);
        f = open_sink(at("setgid/token"), 0640, NULL);
        CHECK_INT(write_str(f, "i", &diag), 0);
        CHECK(stat(at("setgid/token"), &st) == 0);
        CHECK_INT(st.st_gid, getegid());
        tokenfile_free(f);
}

/*
 * As an unprivileged user (root drops to nobody in a child): a group the
 * user is not in is refused at load; a directory it may not write is
 * explained at write. The child's failures are printed there and counted
 * in its exit status.
 */
static void test_unprivileged(void)
{
        int status = 0;
        pid_t pid;

        if (geteuid() != 0) {
                printf("SKIP: running as another user (needs root)\n");
                return;
        }
        /* nobody must be able to reach its directories through ours. */
        CHECK(chmod(base, 0711) == 0);
        make_dir("nobody", 0700);
        CHECK(chown(at("nobody"), OTHER_ID, OTHER_ID) == 0);
        make_dir("rootonly", 0755);
        pid = fork();
        if (pid == 0) {
                struct ft_diag diag = { 0 };
                struct tokenfile *f;
                struct stat st;

                if (setgroups(0, NULL) < 0 || setresgid(OTHER_ID, OTHER_ID, OTHER_ID) < 0 ||
                    setresuid(OTHER_ID, OTHER_ID, OTHER_ID) < 0)
                        _exit(100);
                CHECK_INT(new_fails(at("nobody/token"), 0640, "0", &diag), -EPERM);
                CHECK_CONTAINS(diag.msg, "not a member of group 0");
                CHECK_CONTAINS(diag.msg, "SupplementaryGroups=0");

                f = open_sink(at("nobody/token"), 0640, NULL);
                CHECK_INT(write_str(f, "n", &diag), 0);
                CHECK(stat(at("nobody/token"), &st) == 0);
                CHECK_INT(st.st_uid, OTHER_ID);
                CHECK_INT(st.st_gid, OTHER_ID);
                tokenfile_free(f);

                /* Owned by root is allowed, but nobody may create files there. */
                f = open_sink(at("rootonly/token"), 0600, NULL);
                CHECK_INT(write_str(f, "n", &diag), -EACCES);
                CHECK_CONTAINS(diag.msg, "may not create files in");
                tokenfile_free(f);
                fflush(NULL);
                _exit(test_failed > 99 ? 99 : (int)test_failed);
        }
        CHECK(pid > 0);
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status));
        CHECK_INT(WEXITSTATUS(status), 0);
}

#define ATOMIC_WRITES 2000
#define TOKEN_A_LEN 1000
#define TOKEN_B_LEN 1500

struct reader {
        const char *path;
        const char *a, *b;
        atomic_bool stop;
        unsigned long reads, seen_a, seen_b, missing, torn;
};

/* Open, read to the end and close, as an SDK does, as fast as it can. */
static void *reader_main(void *userdata)
{
        struct reader *rd = userdata;
        static char buf[4096];

        while (!atomic_load(&rd->stop)) {
                size_t len = 0;
                ssize_t n;
                int fd = open(rd->path, O_RDONLY | O_CLOEXEC);

                if (fd < 0) {
                        rd->missing++;
                        continue;
                }
                while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0)
                        len += (size_t)n;
                close(fd);
                rd->reads++;
                if (len == TOKEN_A_LEN && memcmp(buf, rd->a, len) == 0)
                        rd->seen_a++;
                else if (len == TOKEN_B_LEN && memcmp(buf, rd->b, len) == 0)
                        rd->seen_b++;
                else
                        rd->torn++;
        }
        return NULL;
}

static void test_atomic_under_readers(void)
{
        static char a[TOKEN_A_LEN], b[TOKEN_B_LEN];
        struct reader rd = { .a = a, .b = b };
        struct ft_diag diag = { 0 };
        struct tokenfile *f;
        pthread_t thread;
        int failures = 0, hidden;

        /* Different lengths and different bytes, so a short, long or mixed read cannot pass for either. */
        for (size_t i = 0; i < sizeof(a); i++)
                a[i] = (char)('A' + i % 26);
        for (size_t i = 0; i < sizeof(b); i++)
                b[i] = (char)('a' + i % 26);
        make_dir("race", 0700);
        f = open_sink(at("race/token"), 0600, NULL);
        CHECK_INT(tokenfile_write(f, a, sizeof(a), &diag), 0);
        rd.path = at("race/token");
        CHECK(pthread_create(&thread, NULL, reader_main, &rd) == 0);
        for (int i = 0; i < ATOMIC_WRITES; i++) {
                if (i % 2 == 0 ? tokenfile_write(f, b, sizeof(b), &diag) : tokenfile_write(f, a, sizeof(a), &diag))
                        failures++;
        }
        atomic_store(&rd.stop, true);
        CHECK(pthread_join(thread, NULL) == 0);
        tokenfile_free(f);

        printf("atomicity: %lu reads (%lu short token, %lu long) during %d writes\n", rd.reads, rd.seen_a,
               rd.seen_b, ATOMIC_WRITES);
        CHECK_INT(failures, 0);
        CHECK_INT(rd.missing, 0);
        CHECK_INT(rd.torn, 0);
        /* The reader really ran alongside: it saw both tokens. */
        CHECK(rd.seen_a > 0);
        CHECK(rd.seen_b > 0);
        CHECK_INT(count_entries(at("race"), &hidden), 1);
        CHECK_INT(hidden, 0);
}

static void remove_tree(void)
{
        char cmd[PATH_MAX + 32];

        /* The test's own directory, made by mkdtemp: a plain rm -rf is enough. */
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
        if (system(cmd) != 0)
                fprintf(stderr, "could not remove %s\n", base);
}

int main(void)
{
        const char *tmp = getenv("TMPDIR");
        char tmpl[PATH_MAX];

        /*
         * Token files live on tmpfs (/run) in production. On a disk, the two
         * fsyncs of each of the 2,000 writes of the atomicity case take
         * seconds, so prefer /dev/shm unless $TMPDIR says otherwise.
         */
        if (!tmp || !*tmp)
                tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
        format_path(tmpl, sizeof(tmpl), "%s/test_tokenfile.XXXXXX", tmp);
        /* realpath: the module follows no symbolic link, so neither may $TMPDIR contain one. */
        if (!mkdtemp(tmpl) || !realpath(tmpl, base)) {
                perror("mkdtemp");
                return 1;
        }

        test_content_and_mode();
        test_paths();
        test_directory_checks();
        test_symlink_target();
        test_failures_leave_nothing();
        test_remove();
        test_sweep();
        test_groups();
        test_unprivileged();
        test_atomic_under_readers();

        remove_tree();
        return test_summary();
}
