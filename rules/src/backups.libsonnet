// Rules of the backups area (being written).
{
  rules+:: {
    backups: { groups: [] },
  },
}
