"""Generate photonic-crystal data files in the paper's h5 layout, or import the official ones.

    python -m data_scripts.photonics --family gpm|blob --count N --out FILE.h5 [--workers K] [--seed S] [--unlabelled]
                                     [--ggr points|bins]
    python -m data_scripts.photonics --source sq-blob-v3-tm.h5 [--out FILE.h5]

Cell i is drawn from a generator seeded by (seed, i), so a file does not depend on workers or interruptions.
Finished cells go to FILE.h5.parts/ in small shards written atomically; an interrupted run started again with the
same arguments computes only what is missing. The h5 file appears, atomically, when every shard is there.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from essl_core.errors import EsslError, run_command
from essl_core.photonics.dos import GGR_SAMPLINGS
from essl_core.photonics.generate import default_out, generate, import_official


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", help="gpm or blob")
    parser.add_argument("--count", type=int)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--unlabelled", action="store_true", help="unit cells only, no bands or DOS (for SSL)")
    parser.add_argument(
        "--ggr", choices=GGR_SAMPLINGS, default="points", help="GGR sampling of the DOS: the official points, or bins"
    )
    parser.add_argument("--source", type=Path, help="import an official h5 file instead of generating")
    args = parser.parse_args(argv)

    def command() -> None:
        if args.source:
            import_official(args.source, args.out)
            return
        if args.family is None or args.count is None or args.count < 1:
            raise EsslError("--family and a positive --count are needed (or --source)")
        labelled = not args.unlabelled
        out = args.out or default_out(args.family, args.count, args.seed, labelled, sampling=args.ggr)
        print(generate(args.family, args.count, out, args.seed, args.workers, labelled, sampling=args.ggr))

    return run_command(command, "interrupted: the finished shards are kept; run the same command to resume")


if __name__ == "__main__":
    sys.exit(main())
