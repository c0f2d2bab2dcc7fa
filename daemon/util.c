/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t now_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t now_mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint32_t random_u32(void)
{
        uint32_t r = 0;

        /* Jitter needs no cryptographic strength, but getrandom is there and cannot fail here. */
        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
                r = (uint32_t)now_mono_ms() * 2654435761u;
        return r;
}

int read_file_capped(const char *path, size_t max, char **ret, size_t *ret_len, struct ft_diag *diag)
{
        struct stat st;
        char *buf;
        size_t len = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                ft_diag_set(diag, "cannot open %s: %s", path, strerror(e));
                return -e;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                ft_diag_set(diag, "%s is not a regular file", path);
                return -EINVAL;
        }
        if ((uint64_t)st.st_size > max) {
                close(fd);
                ft_diag_set(diag, "%s is larger than %zu bytes", path, max);
                return -EFBIG;
        }
        buf = malloc(max + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        /* Read up to max+1 so a file that grew after fstat is still caught. */
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        ft_wipe(buf, len);
                        free(buf);
                        close(fd);
                        ft_diag_set(diag, "cannot read %s: %s", path, strerror(e));
                        return -e;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        ft_wipe(buf, len);
                        free(buf);
                        close(fd);
                        ft_diag_set(diag, "%s is larger than %zu bytes", path, max);
                        return -EFBIG;
                }
        }
        close(fd);
        buf[len] = '\0';
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}

const char *env_lookup(const char *name, void *userdata)
{
        return secure_getenv(name);
}
