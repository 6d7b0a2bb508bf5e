"""``addcow check``: the conformance checker as a subcommand, as ``qemu-img check`` is one.

It runs ``addcow-check`` itself (:mod:`addcow_conformance.checker.cli`) with the options given
here, so its verdict, output and exit status are the checker's, byte for byte; ``-r`` is
``addcow-check --repair`` (:mod:`addcow_conformance.repair`). The tool layer may use the kit;
the kit never imports this module.
"""

from __future__ import annotations

import click

from addcow_ref.clirun import HELP_OPTION_NAMES

__all__ = ["check"]

EXIT_STATUS_HELP = """\b
Exit status (as qemu-img check, after any repair):
  0   conforming: no error and no warning
  1   the check or the repair could not be completed
  2   errors remain (qemu-img's "corruptions")
  3   only warnings remain (qemu-img's "leaks")
  64  usage error
"""


@click.command("check", epilog=EXIT_STATUS_HELP,
               context_settings={"help_option_names": HELP_OPTION_NAMES})
@click.argument("image", metavar="IMAGE")
@click.option("-r", "--repair", type=click.Choice(["leaks", "all"]),
              help="First repair what the spec leaves no choice about, then check the result: "
              "'leaks' only cuts bytes nobody reads (after the bitmap, past virtual_size), "
              "'all' makes every mechanical repair. Each repair names the rule it fixes.")
@click.option("--output", type=click.Choice(["human", "json"]), default="human",
              show_default=True, help="Report format (JSON: addcow-check's report; the repair "
              "summary then goes to stderr).")
@click.option("--no-follow", is_flag=True,
              help="Check the metadata file alone: do not open the image or backing files.")
@click.option("-U", "--force-share", is_flag=True,
              help="Read without a shared lock, even while a writer has the image open "
              "(not with -r: a repair always takes the writer's locks).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; only the exit status tells.")
@click.pass_context
def check(ctx: click.Context, image: str, repair: str | None, output: str, no_follow: bool,
          force_share: bool, quiet: bool) -> None:
    """Check IMAGE against the add-cow specification and, with -r, repair it.

    Every finding names the rule it breaks, the byte offset and the field. The repairs change
    only what the spec leaves no choice about (the all_allocated bit, padding bits, reserved
    fields, stray name-area bytes, unknown autoclear bits, the lengths of the two files); the
    guest data never changes, and a bad magic, version, offset or name is never guessed at.

    \b
    Examples:
      addcow check disk.add-cow                 # as addcow-check disk.add-cow
      addcow check -r leaks disk.add-cow        # cut bytes nobody reads
      addcow check -r all --output=json disk.add-cow
    """
    from addcow_conformance.checker.cli import main as checker_main  # only paid for when used

    argv = [f"--output={output}"]
    argv += ["--repair", repair] if repair is not None else []
    argv += ["--no-follow"] if no_follow else []
    argv += ["-U"] if force_share else []
    argv += ["-q"] if quiet else []
    ctx.exit(checker_main([*argv, "--", image]))
