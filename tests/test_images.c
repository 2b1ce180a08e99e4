/* Image decoding: every file of the bad corpus fails with its expected one-line error and code, good files
 * decode to PIL's convert('RGB') pixels, EXIF orientations land where a viewer shows them, and no prefix
 * or corruption of a valid file crashes or decodes as if it were whole.
 * usage: test_images ASSETS_DIR SAMPLES_DIR */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "vidcap.h"
#include "vision/image.h"

static const char *assets, *samples;

static int code_of(const char *name)
{
    static const struct {
        const char *name;
        int code;
    } codes[] = {{"VC_ERR_IO", VC_ERR_IO},
                 {"VC_ERR_FORMAT", VC_ERR_FORMAT},
                 {"VC_ERR_UNSUPPORTED", VC_ERR_UNSUPPORTED},
                 {"VC_ERR_MODEL", VC_ERR_MODEL},
                 {"VC_ERR_NOMEM", VC_ERR_NOMEM},
                 {"VC_ERR_ARG", VC_ERR_ARG}};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strcmp(codes[i].name, name) == 0) return codes[i].code;
    return 1; /* never a status: makes the comparison fail */
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL &&
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n < 0 ? 0 : (size_t)n;
    return buf;
}

/* Splits a table line in place on tabs; returns the number of fields. */
static int split(char *line, char **f, int max)
{
    int n = 0;
    line[strcspn(line, "\r\n")] = 0;
    if (!*line) return 0;
    for (char *s = line; n < max; n++) {
        f[n] = s;
        s = strchr(s, '\t');
        if (!s) return n + 1;
        *s++ = 0;
    }
    return n;
}

/* The contract every failure keeps: negative code, "name: reason" on one line, output left empty. */
static void check_failure(const char *name, int rc, int want, const char *substring, const char *err,
                          const img_rgb *im)
{
    TU_CHECK(rc == want, "%s: rc %d, want %d (%s)", name, rc, want, err);
    TU_CHECK(strncmp(err, name, strlen(name)) == 0 && strncmp(err + strlen(name), ": ", 2) == 0,
             "%s: error does not start with the file name: %s", name, err);
    TU_CHECK(!strchr(err, '\n'), "%s: error spans lines: %s", name, err);
    TU_CHECK(!substring || strstr(err, substring), "%s: error lacks '%s': %s", name, substring, err);
    TU_CHECK(!im->data && im->w == 0 && im->h == 0, "%s: output not left empty", name);
}

static void test_bad_corpus(void)
{
    char path[PATH_MAX], line[1024], err[512];
    snprintf(path, sizeof path, "%s/EXPECTED", assets);
    FILE *f = fopen(path, "r");
    TU_CHECK(f, "cannot open %s", path);
    if (!f) return;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[3];
        if (split(line, fld, 3) != 3) continue;
        snprintf(path, sizeof path, "%s/%s", assets, fld[0]);
        img_rgb im = {(uint8_t *)1, 7, 7}; /* garbage in: the loader must reset it */
        int rc = img_load(path, &im, err, sizeof err);
        fprintf(stderr, "  %-24s %s\n", fld[0], err);
        check_failure(path, rc, code_of(fld[2]), fld[1], err, &im);
        if (rc == 0) img_free(&im);
        n++;
    }
    fclose(f);
    TU_CHECK(n >= 15, "EXPECTED lists only %d files", n);
}

static void test_file_errors(void)
{
    char err[512], path[PATH_MAX];
    img_rgb im;
    int rc = img_load(assets, &im, err, sizeof err);
    check_failure(assets, rc, VC_ERR_IO, "is a directory", err, &im);

    snprintf(path, sizeof path, "%s/no-such-image.png", assets);
    rc = img_load(path, &im, err, sizeof err);
    check_failure(path, rc, VC_ERR_IO, "No such file", err, &im);

    rc = img_load("/dev/null", &im, err, sizeof err);
    check_failure("/dev/null", rc, VC_ERR_IO, "not a regular file", err, &im);

    /* root reads anything, so the permission case only means something for other users */
    if (geteuid() != 0) {
        char tmp[] = "img_unreadable_XXXXXX";
        int fd = mkstemp(tmp);
        TU_CHECK(fd >= 0, "mkstemp failed");
        if (fd >= 0) {
            TU_CHECK(write(fd, "\xff\xd8\xff", 3) == 3, "write failed");
            close(fd);
            chmod(tmp, 0);
            rc = img_load(tmp, &im, err, sizeof err);
            check_failure(tmp, rc, VC_ERR_IO, "Permission denied", err, &im);
            unlink(tmp);
        }
    }

    /* a tiny error buffer truncates the message but never overflows */
    char small[8];
    rc = img_load(path, &im, small, sizeof small);
    TU_CHECK(rc == VC_ERR_IO && strlen(small) == sizeof small - 1, "small buffer: %d '%s'", rc, small);
    rc = img_load(path, &im, NULL, 0);
    TU_CHECK(rc == VC_ERR_IO, "NULL error buffer: %d", rc);

    img_free(NULL);
    img_rgb z = {0};
    img_free(&z);
    img_free(&z);
    rc = img_load_memory("mem", NULL, 0, &im, err, sizeof err);
    check_failure("mem", rc, VC_ERR_FORMAT, "empty file", err, &im);
}

static void test_good_corpus(void)
{
    char path[PATH_MAX], line[1024], err[512];
    snprintf(path, sizeof path, "%s/GOOD", assets);
    FILE *f = fopen(path, "r");
    TU_CHECK(f, "cannot open %s", path);
    if (!f) return;
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[5];
        if (split(line, fld, 5) != 5) continue;
        n++;
        int w = atoi(fld[1]), h = atoi(fld[2]), tol = atoi(fld[4]);
        snprintf(path, sizeof path, "%s/%s", assets, fld[3]);
        size_t want_len;
        uint8_t *want = read_all(path, &want_len);
        snprintf(path, sizeof path, "%s/%s", assets, fld[0]);
        img_rgb im;
        int rc = img_load(path, &im, err, sizeof err);
        TU_CHECK(rc == 0, "%s", err);
        TU_CHECK(want && want_len == (size_t)w * h * 3, "%s: bad oracle file", fld[3]);
        if (rc == 0 && want && want_len == (size_t)w * h * 3) {
            TU_CHECK(im.w == w && im.h == h, "%s: %dx%d, want %dx%d", fld[0], im.w, im.h, w, h);
            if (im.w == w && im.h == h) {
                int worst = 0;
                size_t at = 0;
                for (size_t i = 0; i < want_len; i++) {
                    int d = abs((int)im.data[i] - (int)want[i]);
                    if (d > worst) worst = d, at = i;
                }
                TU_CHECK(worst <= tol, "%s: pixel %zu channel %zu is %d, PIL says %d", fld[0],
                         at / 3 % (size_t)w, at % 3, im.data[at], want[at]);
            }
        }
        img_free(&im);
        TU_CHECK(!im.data && im.w == 0, "img_free did not reset");
        free(want);
    }
    fclose(f);
    TU_CHECK(n >= 15, "GOOD lists only %d files", n);
}

static const char *corner_colour(const img_rgb *im, int cx, int cy)
{
    /* 2 pixels in from the corner: inside the 12x12 mark whatever JPEG does to its edges */
    int x = cx ? im->w - 3 : 2, y = cy ? im->h - 3 : 2;
    const uint8_t *p = im->data + ((size_t)y * im->w + x) * 3;
    if (p[0] > 200 && p[1] < 60 && p[2] < 60) return "red";
    if (p[1] > 200 && p[0] < 60 && p[2] < 60) return "green";
    if (p[2] > 200 && p[0] < 60 && p[1] < 60) return "blue";
    return "other";
}

static void test_orientation(void)
{
    char path[PATH_MAX], line[1024], err[512];
    snprintf(path, sizeof path, "%s/ORIENTATION", assets);
    FILE *f = fopen(path, "r");
    TU_CHECK(f, "cannot open %s", path);
    if (!f) return;
    static const char *names[4] = {"TL", "TR", "BL", "BR"};
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char *fld[5];
        if (split(line, fld, 5) != 5) continue;
        n++;
        snprintf(path, sizeof path, "%s/%s", assets, fld[0]);
        img_rgb im;
        int rc = img_load(path, &im, err, sizeof err);
        TU_CHECK(rc == 0, "%s", err);
        if (rc) continue;
        TU_CHECK(im.w == atoi(fld[1]) && im.h == atoi(fld[2]), "%s: %dx%d, want %sx%s", fld[0], im.w, im.h,
                 fld[1], fld[2]);
        for (int c = 0; c < 4; c++) {
            const char *want = strcmp(names[c], fld[3]) == 0   ? "red"
                               : strcmp(names[c], fld[4]) == 0 ? "green"
                                                               : "blue";
            const char *got = corner_colour(&im, c & 1, c >> 1);
            TU_CHECK(strcmp(got, want) == 0, "%s: corner %s is %s, want %s", fld[0], names[c], got, want);
        }
        img_free(&im);
    }
    fclose(f);
    TU_CHECK(n == 8, "ORIENTATION lists %d files, want all 8 orientations", n);
}

/* Every prefix missing more than keep_tail bytes is rejected (SIZE_MAX: only check that none crashes);
 * prefixes live in exact-size heap blocks so AddressSanitizer sees any read past the end. */
static void test_prefixes(const char *dir, const char *file, size_t keep_tail)
{
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t len;
    uint8_t *whole = read_all(path, &len);
    TU_CHECK(whole, "cannot read %s", path);
    if (!whole) return;
    img_rgb im;
    int rc = img_load_memory(file, whole, len, &im, err, sizeof err);
    TU_CHECK(rc == 0, "%s", err);
    img_free(&im);
    int accepted = 0;
    for (size_t n = 1; n < len; n++) {
        uint8_t *part = malloc(n);
        memcpy(part, whole, n);
        rc = img_load_memory(file, part, n, &im, err, sizeof err);
        if (rc == 0) {
            if (len - n > keep_tail && accepted++ < 3)
                TU_CHECK(0, "%s: the first %zu of %zu bytes decode as a %dx%d image", file, n, len, im.w,
                         im.h);
            img_free(&im);
        } else {
            TU_CHECK(strncmp(err, file, strlen(file)) == 0 && !strchr(err, '\n'), "%s: bad message %s", file,
                     err);
        }
        free(part);
    }
    free(whole);
}

/* Random byte corruption: whatever happens, no crash, no leak, and a sane result. */
static void test_corruption(const char *dir, const char *file, int rounds)
{
    char path[PATH_MAX], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t len;
    uint8_t *whole = read_all(path, &len);
    TU_CHECK(whole && len > 0, "cannot read %s", path);
    if (!whole || !len) return;
    tu_seed(1234);
    int ok = 0;
    for (int r = 0; r < rounds; r++) {
        uint8_t *bad = malloc(len);
        memcpy(bad, whole, len);
        int flips = 1 + (int)tu_uniform(0, 8);
        for (int i = 0; i < flips; i++)
            bad[(size_t)tu_uniform(0, (float)len) % len] = (uint8_t)tu_uniform(0, 256);
        img_rgb im;
        int rc = img_load_memory(file, bad, len, &im, err, sizeof err);
        if (rc == 0) {
            ok++;
            TU_CHECK(im.data && im.w > 0 && im.h > 0 && im.w <= IMG_MAX_SIDE && im.h <= IMG_MAX_SIDE,
                     "%s: corrupt copy decoded to %dx%d", file, im.w, im.h);
            img_free(&im);
        } else {
            TU_CHECK(rc < 0 && strncmp(err, file, strlen(file)) == 0, "%s: rc %d message %s", file, rc, err);
        }
        free(bad);
    }
    fprintf(stderr, "  %s: %d of %d corrupted copies still decode\n", file, ok, rounds);
    free(whole);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ASSETS_DIR SAMPLES_DIR\n", argv[0]);
        return 2;
    }
    assets = argv[1];
    samples = argv[2];
    test_bad_corpus();
    test_file_errors();
    test_good_corpus();
    test_orientation();

    test_prefixes(samples, "bag.jpg", 0);
    test_prefixes(samples, "sneaker.png", 0);
    test_prefixes(assets, "progressive.jpg", 0);
    test_prefixes(assets, "cmyk.jpg", 0);
    test_prefixes(assets, "exif-orientation-6.jpg", 0);
    test_prefixes(assets, "rgb16.png", 0);
    test_prefixes(assets, "palette.png", 0);
    test_prefixes(assets, "rgb.bmp", 0); /* 12 px rows need no padding: every byte is pixel data */
    test_prefixes(assets, "rgb.ppm", 0);
    test_prefixes(assets, "gray.pgm", 0);
    test_prefixes(assets, "single.gif", 1);     /* the trailer byte after the frame is optional */
    test_prefixes(assets, "rgb.tga", 26);       /* PIL's optional TGA 2.0 footer */
    test_prefixes(assets, "rle.tga", SIZE_MAX); /* stb zero-fills a cut RLE stream: see image.h */

    test_corruption(samples, "bag.jpg", 300);
    test_corruption(samples, "sneaker.png", 300);
    test_corruption(assets, "progressive.jpg", 300);
    test_corruption(assets, "animated.gif", 300);
    test_corruption(assets, "palette.bmp", 300);
    test_corruption(assets, "rle.tga", 300);
    return tu_finish("test_images");
}
