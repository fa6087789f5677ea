"""Parliamentary records: record sets, records, party groups, stances and benchmark tasks."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

TERMS = (
    ("7th", "7th term (2009-2014)"),
    ("8th", "8th term (2014-2019)"),
    ("9th", "9th term (2019-2024)"),
    ("10th", "10th term (2024-2029)"),
)

# Group codes from left to right, as the Parliament seats its chamber (far left first, the
# non-attached members last); codes not listed sit after these, in the order given.
SEATING_ORDER = (
    "GUE_NGL",
    "SD",
    "GREEN_EFA",
    "ALDE",
    "RENEW",
    "EPP",
    "ECR",
    "EFD",
    "EFDD",
    "ENF",
    "ID",
    "PFE",
    "ESN",
    "NI",
)


def seating_key(code: str) -> int:
    return SEATING_ORDER.index(code) if code in SEATING_ORDER else len(SEATING_ORDER)


class PartyGroup(models.Model):
    """An EP political group in one term; the same code can mean another group in another term."""

    code = models.CharField(max_length=32)
    term = models.CharField(max_length=8, choices=TERMS)
    label = models.CharField(max_length=200)
    short_label = models.CharField(max_length=32, blank=True)
    colour = models.CharField(max_length=7, default="#888888")
    seats_at_start = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seats when the term began (or when the group formed)."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["code", "term"], name="group_code_term_unique")]
        ordering = ["term", "-seats_at_start", "code"]

    def __str__(self) -> str:
        return f"{self.short_label or self.code} ({self.term})"


class Topic(models.Model):
    name = models.CharField(max_length=200, unique=True)  # normalised, see records.normalise

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RecordSet(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    current_version = models.ForeignKey(
        "RecordSetVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The version that browsing, scenarios and the benchmark use.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Record(models.Model):
    """One EP issue, recognised by its content (content_hash), not by any file's id."""

    record_set = models.ForeignKey(RecordSet, on_delete=models.CASCADE, related_name="records")
    content_hash = models.CharField(max_length=64)
    title = models.TextField()
    background = models.TextField()
    resolution = models.TextField(blank=True)
    term = models.CharField(max_length=8, choices=TERMS)
    topics = models.ManyToManyField(Topic, related_name="records")
    real_total_score = models.FloatField(null=True, blank=True)  # share of all MEPs for, 0..1
    real_total_choice = models.PositiveSmallIntegerField(null=True, blank=True)  # 0..9

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record_set", "content_hash"], name="record_content_unique")]
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title[:80]


class Stance(models.Model):
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="stances")
    group = models.ForeignKey(PartyGroup, on_delete=models.PROTECT, related_name="stances")
    text = models.TextField()
    real_score = models.FloatField(help_text="Share of the group's MEPs that voted for, 0..1.")
    real_choice = models.PositiveSmallIntegerField(help_text="min(9, floor(10 * real_score)).")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record", "group"], name="stance_group_unique")]
        ordering = ["record_id", "-group__seats_at_start", "group__code"]

    def __str__(self) -> str:
        return f"{self.group.code} on {self.record_id}"


class BenchmarkTask(models.Model):
    """A PoliCon task: a record, its k groups in order, their seat weights and a veto group."""

    record_set = models.ForeignKey(RecordSet, on_delete=models.CASCADE, related_name="tasks")
    record = models.ForeignKey(Record, on_delete=models.CASCADE, related_name="tasks")
    topic = models.ForeignKey(Topic, on_delete=models.PROTECT, related_name="tasks")
    party_count = models.PositiveSmallIntegerField()
    groups = models.JSONField(help_text="Group codes, in the task's order.")
    seat_weights = models.JSONField(help_text="Seat shares aligned with groups; they sum to 1.")
    veto_group = models.CharField(max_length=32)
    content_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record_set", "content_hash"], name="task_content_unique")]
        indexes = [models.Index(fields=["record_set", "party_count"])]
        ordering = ["party_count", "id"]

    def __str__(self) -> str:
        return f"{self.party_count}-party task on record {self.record_id}"


class RecordSetVersion(models.Model):
    """One state of a record set: the records it held after one import.

    Records are content-addressed and never edited, so a record unchanged between versions is
    the same row in both. Runs point at the version they played (runs.Run.record_set_version).
    """

    class Mode(models.TextChoices):
        EXTEND = "extend", "Extend: the previous version's records plus the imported ones"
        REPLACE = "replace", "Replace: exactly the imported records"

    record_set = models.ForeignKey(RecordSet, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.EXTEND)
    records = models.ManyToManyField(Record, related_name="versions")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["record_set", "number"], name="version_number_unique")]
        ordering = ["record_set_id", "-number"]

    def __str__(self) -> str:
        return f"{self.record_set.name} v{self.number}"


class GroupAlias(models.Model):
    """A group code found in files that stands for a known group in one term (ENF -> ENL, ...)."""

    term = models.CharField(max_length=8, choices=TERMS)
    alias = models.CharField(max_length=32, help_text="The code as it appears in the files.")
    group = models.ForeignKey(PartyGroup, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["term", "alias"], name="group_alias_term_unique")]
        ordering = ["term", "alias"]
        verbose_name_plural = "group aliases"

    def __str__(self) -> str:
        return f"{self.alias} -> {self.group.code} ({self.term})"

    def clean(self) -> None:
        from deliberation.records.normalise import normalise_group_code

        self.alias = normalise_group_code(self.alias or "")
        if self.group_id and self.group.term != self.term:
            raise ValidationError(
                {"group": f"{self.group} is a group of the {self.group.term} term, not the {self.term}."}
            )


def upload_path(instance: "RecordUploadFile", filename: str) -> str:
    return f"record_uploads/{instance.upload_id}/{filename}"


class RecordUpload(models.Model):
    """Files an admin uploaded, their check, and the import that a Celery task runs from them."""

    class Status(models.TextChoices):
        CHECKING = "checking"  # stored; a worker reads and validates it
        CHECKED = "checked"  # read and validated, waiting for the admin to import
        REFUSED = "refused"  # the check found nothing to import or a file it could not read
        QUEUED = "queued"
        IMPORTING = "importing"
        DONE = "done"
        FAILED = "failed"

    # A worker has the upload: the page polls its progress until it leaves these.
    WORKING = frozenset({Status.CHECKING, Status.QUEUED, Status.IMPORTING})

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    record_set_name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    note = models.TextField(blank=True)
    mode = models.CharField(max_length=8, choices=RecordSetVersion.Mode.choices, default=RecordSetVersion.Mode.EXTEND)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CHECKING, db_index=True)
    check_report = models.JSONField(null=True, blank=True)
    result_report = models.JSONField(null=True, blank=True)
    progress = models.FloatField(default=0.0)
    error = models.TextField(blank=True)
    version = models.ForeignKey(RecordSetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"upload {self.pk} into {self.record_set_name} ({self.status})"


class RecordUploadFile(models.Model):
    upload = models.ForeignKey(RecordUpload, on_delete=models.CASCADE, related_name="files")
    file = models.FileField(upload_to=upload_path)
    name = models.CharField(max_length=255, help_text="The file's name on the admin's machine.")
    size = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name
