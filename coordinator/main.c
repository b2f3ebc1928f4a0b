/* main.c — streamscale-coordinator; everything lives in coord_main.c so the
 * tests can link the coordinator as a library. */
int coord_main(int argc, char **argv);

int main(int argc, char **argv)
{
    return coord_main(argc, argv);
}
