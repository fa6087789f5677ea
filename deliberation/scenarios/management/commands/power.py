import json

from django.core.management.base import BaseCommand, CommandError

from deliberation.engine.power import RULE_KEYS, PowerError, parse_fraction, power_of


def seat_argument(text: str) -> tuple[str, str]:
    code, sep, share = text.partition("=")
    if not sep or not code:
        raise CommandError(f"--seats: {text!r} is not CODE=SHARE")
    return code.strip(), share


class Command(BaseCommand):
    help = (
        "Shapley-Shubik and normalised Banzhaf power of each group when a coalition wins by "
        "reaching the goal's quota (5/9 of the seats for simple majority, 20/27 for two-thirds)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seats",
            nargs="+",
            required=True,
            type=seat_argument,
            metavar="CODE=SHARE",
            help="seat shares (0.5, 1/2) or seat counts; they are normalised to sum to 1",
        )
        parser.add_argument("--goal", default="simple_majority", choices=RULE_KEYS)
        parser.add_argument("--veto", default=None, metavar="CODE", help="the veto group (veto_power)")
        parser.add_argument(
            "--quota",
            default="scale",
            metavar="Q",
            help="'scale' (the goal's threshold over 0..9, default), 'ep' (more than half, two "
            "thirds of the votes cast), or a share of the seats such as 2/3 or 0.6",
        )
        parser.add_argument("--strict", action="store_true", help="with a numeric --quota: more than Q, not at least Q")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **options):
        try:
            seats = {code: parse_fraction(share) for code, share in options["seats"]}
            if len(seats) != len(options["seats"]):
                raise PowerError("seats: a group appears twice")
            result = power_of(
                seats,
                goal=options["goal"],
                veto_group=options["veto"],
                quota=options["quota"],
                strict=options["strict"],
            )
        except PowerError as error:
            raise CommandError(str(error)) from None

        if options["json"]:
            self.stdout.write(json.dumps({"goal": options["goal"], **result.as_dict()}, indent=2))
            return
        self.stdout.write(f"{options['goal']}: a coalition wins with {result.quota.label()}")
        self.stdout.write(f"{'group':<12}{'seats':>8}{'Shapley-Shubik':>22}{'Banzhaf':>22}")
        for code in result.codes:
            ss, bz = result.shapley_shubik[code], result.banzhaf[code]
            self.stdout.write(
                f"{code:<12}{float(result.seats[code]):>8.3f}"
                f"{float(ss):>12.4f} {str(ss):>9}{float(bz):>12.4f} {str(bz):>9}"
            )
