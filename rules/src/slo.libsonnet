// Rules of the slo area (being written).
{
  rules+:: {
    slo: { groups: [] },
  },
}
