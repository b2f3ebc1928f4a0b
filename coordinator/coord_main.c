/* coord_main.c — streamscale-coordinator entry (filled in below). */
int coord_main(int argc, char **argv);
int coord_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
