// Rules of the sla area (being written).
{
  rules+:: {
    sla: { groups: [] },
  },
}
