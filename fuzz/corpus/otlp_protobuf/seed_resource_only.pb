
D
*

service.name
x

k8s.pod.name
p

torch.metrics1.0