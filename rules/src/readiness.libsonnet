// Rules of the readiness area (being written).
{
  rules+:: {
    readiness: { groups: [] },
  },
}
