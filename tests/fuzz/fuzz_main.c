/* SPDX-License-Identifier: MIT */
/*
 * fuzz_main.c: runs a libFuzzer target over every file of its corpus
 * folder(s) without libFuzzer, so the corpus is a regression test in the
 * normal (and the sanitizer) build.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf;
        long len;

        if (!f)
                return -1;
        if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
                fclose(f);
                return -1;
        }
        /* An exact-size heap copy, so ASan sees any read past the input. */
        buf = malloc(len ? (size_t)len : 1);
        if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
                free(buf);
                fclose(f);
                return -1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)len);
        free(buf);
        return 0;
}

int main(int argc, char **argv)
{
        unsigned ran = 0, failed = 0;

        for (int i = 1; i < argc; i++) {
                DIR *d = opendir(argv[i]);
                struct dirent *de;

                if (!d) {
                        fprintf(stderr, "%s: cannot open corpus folder\n", argv[i]);
                        failed++;
                        continue;
                }
                while ((de = readdir(d))) {
                        char path[4096];
                        struct stat st;

                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                                continue;
                        if (run_file(path) < 0) {
                                fprintf(stderr, "%s: unreadable\n", path);
                                failed++;
                        } else {
                                ran++;
                        }
                }
                closedir(d);
        }
        /* An empty corpus would make this test pass without testing anything. */
        if (ran == 0)
                failed++;
        printf("%u passed, %u failed\n", ran, failed);
        return failed ? 1 : 0;
}
